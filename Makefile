# The two commands a new user runs: `make demo` and `make test`. Both create .venv on first use.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
SHARED  ?= ../shared/data
# One thread: on a shared or busy 2-core box, torch's spinning threads cost more than they give.
export OMP_NUM_THREADS ?= 1

.PHONY: demo test test-fast lint typecheck bench-deps bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: a bare requirement would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/bastion run examples/digits.yaml

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	BASTION_SHARED_DATA=$(SHARED) $(BIN)/python -m pytest -n 2 --dist loadgroup

test-fast: $(STAMP)
	BASTION_SHARED_DATA=$(SHARED) $(BIN)/python -m pytest -n 2 --dist loadgroup -m "not slow"

bench-deps: $(STAMP)
	# --no-deps: the peers must not replace the CPU build of torch.
	$(BIN)/python -m pip install --quiet --no-deps torchattacks==3.5.1 adversarial-robustness-toolbox==1.20.1
	$(BIN)/python -m pip install --quiet requests six tqdm

bench: bench-deps
	BASTION_SHARED_DATA=$(SHARED) $(BIN)/python bench/attacks.py

clean:
	rm -rf $(VENV) .bastion build *.egg-info .mypy_cache .ruff_cache .pytest_cache
