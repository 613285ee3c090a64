"""Detectors: their scores, the joint FPR calibration, and the catch rate on PGD (digits)."""

from __future__ import annotations

from typing import cast

import numpy as np
import pytest
import torch

from bastion import attacks
from bastion.attacks import ImageAttack
from bastion.config.serve import DetectLayer, ServeConfig
from bastion.data import Dataset
from bastion.defend.detect import Detector, Mahalanobis, SqueezeDisagreement, fpr_threshold
from bastion.defend.squeeze import BitDepth
from bastion.defend.stack import Guard

TARGET_FPR = 0.05


def test_fpr_threshold_flags_at_most_the_target_fraction() -> None:
    scores = np.arange(100, dtype=np.float64)
    for fpr in (0.01, 0.05, 0.333):
        threshold = fpr_threshold(scores, fpr)
        assert (scores > threshold).mean() <= fpr
        assert (scores >= threshold).mean() > fpr  # and not more conservative than needed


def test_mahalanobis_matches_a_direct_computation() -> None:
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(300, 4, generator=gen)
    labels = torch.arange(300) % 3
    feats = feats + labels[:, None].float() * 3
    detector = Mahalanobis(ridge=0.0).fit(feats, labels, 3)
    means = np.stack([feats[labels == c].numpy().mean(0) for c in range(3)])
    centred = feats.numpy() - means[labels.numpy()]
    precision = np.linalg.inv(centred.T @ centred / len(feats))
    point = np.array([[10.0, -4.0, 0.0, 2.0]], dtype=np.float32)
    expected = min(float(((point - m) @ precision @ (point - m).T).item()) for m in means)
    assert detector.score(torch.from_numpy(point)).item() == pytest.approx(expected, rel=1e-3)
    near = detector.score(torch.from_numpy(means[1:2].astype(np.float32))).item()
    assert near < 1e-3


def test_squeeze_score_is_the_largest_l1_distance() -> None:
    probs = torch.tensor([[0.9, 0.1], [0.5, 0.5]])
    squeezed = [torch.tensor([[0.8, 0.2], [0.5, 0.5]]), torch.tensor([[0.9, 0.1], [0.0, 1.0]])]
    scores = SqueezeDisagreement.score(probs, squeezed)
    torch.testing.assert_close(scores, torch.tensor([0.2, 1.0]))
    with pytest.raises(ValueError, match="squeezer"):
        SqueezeDisagreement(squeezers=[])


def test_joint_calibration_holds_the_union_to_the_target_on_its_data() -> None:
    gen = torch.Generator().manual_seed(1)
    detector = Detector(
        squeeze=SqueezeDisagreement(squeezers=[BitDepth(bits=4)]), mahalanobis=Mahalanobis()
    )
    clean = {
        "squeeze": torch.rand(400, generator=gen),
        "mahalanobis": torch.rand(400, generator=gen),
    }
    detector.calibrate(clean, fpr=0.1)
    decision = detector.decide(clean)
    assert decision.flagged.mean() <= 0.1
    assert decision.flagged.mean() >= 0.08
    extreme = detector.decide({"squeeze": torch.tensor([5.0]), "mahalanobis": torch.tensor([0.0])})
    assert extreme.flagged.tolist() == [True]
    assert extreme.reasons == [["detect.squeeze"]]


def _detect_only() -> ServeConfig:
    return ServeConfig(layers=[DetectLayer(name="detect")], detector_target_fpr=TARGET_FPR)


def test_detector_catches_pgd_on_digits_at_the_target_fpr(
    digits: Dataset, digits_cnn: torch.nn.Module
) -> None:
    """The number the README quotes: PGD (L∞, ε = 0.3) on the undefended digits CNN."""
    x_train, y_train = digits.train.tensors()
    x_val, _ = digits.val.tensors()
    x_test, y_test = digits.test.tensors()
    guard = Guard.from_config(_detect_only(), members=[digits_cnn]).fit(
        x_train=x_train, y_train=y_train, x_val=x_val, num_classes=10, target_fpr=TARGET_FPR
    )
    pgd = cast(ImageAttack, attacks.create("pgd", eps=0.3, norm="linf", steps=40, seed=0))
    x_adv = pgd(digits_cnn, x_test, y_test)
    with torch.no_grad():
        fooled = (digits_cnn(x_adv).argmax(1) != y_test).numpy()
    assert fooled.mean() > 0.9, "PGD should break the undefended model"
    clean_flags = np.array([v.flagged for v in guard(x_test)])
    adv_flags = np.array([v.flagged for v in guard(x_adv)])
    fpr = clean_flags.mean()
    catch = adv_flags[fooled].mean()
    print(
        f"\ndetector on digits: clean FPR {fpr:.3f} (target {TARGET_FPR}), "
        f"PGD eps=0.3 catch rate {catch:.3f} over {int(fooled.sum())} successful attacks"
    )
    assert fpr <= 0.12  # target 5 % set on 180 validation rows; the test set is another draw
    assert catch >= 0.85
