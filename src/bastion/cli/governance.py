"""``bastion owners``, ``bastion risk``, ``bastion vuln`` and ``bastion audit``.

Thin on purpose: each command opens the registry, makes one call and prints. Every write
goes through the registry, which audits it; ``audit verify`` exits 1 when the chain or any
audited record was tampered with, listing every problem on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from bastion.cli.models import CONFIG_HELP, DB_HELP, as_json, open_registry
from bastion.errors import ConfigError, IntegrityError, RegistryError
from bastion.registry import Risk, Vulnerability
from bastion.registry.governance import parse_date
from bastion.registry.vulnerabilities import template

__all__ = ["register"]


def _load_report(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("file not found", source=str(path)) from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the report: {exc}", source=str(path)) from exc
    if not isinstance(data, dict):
        raise ConfigError("a vulnerability report must be a mapping", source=str(path))
    return data


def _params(pairs: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise RegistryError(f"--param takes KEY=VALUE, got {pair!r}")
        params[key.strip()] = yaml.safe_load(raw)
    return params


def _ids(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise RegistryError(f"--samples takes comma-separated integer ids, got {text!r}") from None


def _print_risks(risks: list[Risk]) -> None:
    table = Table(title="Risk register")
    for column in ("id", "score", "L×I", "status", "owner", "title", "attacks", "review"):
        table.add_column(column)
    for r in risks:
        table.add_row(
            str(r.id),
            str(r.score),
            f"{r.likelihood}×{r.impact}",
            r.status.value,
            r.owner,
            r.title,
            ", ".join(r.attacks),
            r.next_review.isoformat() if r.next_review else "",
        )
    Console().print(table)


def _print_vuln(v: Vulnerability) -> None:
    repro = v.reproduction
    lines = [
        f"#{v.id} [{v.severity.value}] {v.title} — {v.status.value}",
        f"  affected: {', '.join(v.affected)}; owner: {v.owner}",
        f"  reproduce: {repro.attack} {repro.attack_version} params={repro.params} "
        f"seed={repro.seed} samples={list(repro.sample_ids)}",
    ]
    if v.remediation:
        lines.append(f"  remediation: {v.remediation}")
    if v.verified_by_evaluation is not None:
        lines.append(f"  verified by evaluation #{v.verified_by_evaluation}")
    lines += [f"  note: {note}" for note in v.notes]
    for line in lines:
        typer.echo(line)


def _owners(app: typer.Typer) -> None:
    owners = typer.Typer(help="Who owns each component's robustness roles.", no_args_is_help=True)

    @owners.command("set")
    def set_owner(
        component: str = typer.Argument(..., help="component, e.g. a model name or 'serve'"),
        role: str = typer.Argument(
            ..., help="threat_modelling, attack_simulation or incident_response"
        ),
        owner: str = typer.Argument(..., help="the person or team"),
        db: str | None = typer.Option(None, "--db", help=DB_HELP),
        config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    ) -> None:
        """Name the owner of a role for a component (replacing the previous one)."""
        with open_registry(db, config) as registry:
            row = registry.owners.set(component, role, owner)
        typer.echo(f"{row.component}: {row.role.value} -> {row.owner}")

    @owners.command("list")
    def list_owners(
        component: str | None = typer.Option(None, "--component", help="only this component"),
        as_json_: bool = typer.Option(False, "--json", help="print JSON"),
        db: str | None = typer.Option(None, "--db", help=DB_HELP),
        config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    ) -> None:
        """List owners by component and role."""
        with open_registry(db, config) as registry:
            rows = registry.owners.list(component)
        if as_json_:
            typer.echo(as_json(rows))
            return
        table = Table(title="Owners")
        for column in ("component", "role", "owner", "since"):
            table.add_column(column)
        for o in rows:
            table.add_row(o.component, o.role.value, o.owner, f"{o.updated_at:%Y-%m-%d}")
        Console().print(table)

    app.add_typer(owners, name="owners")


def _risks(app: typer.Typer) -> None:
    risk = typer.Typer(help="The risk register.", no_args_is_help=True)

    @risk.command("add")
    def add_risk(
        title: str = typer.Option(..., "--title"),
        likelihood: int = typer.Option(..., "--likelihood", help="1 (rare) to 5 (certain)"),
        impact: int = typer.Option(..., "--impact", help="1 (minor) to 5 (severe)"),
        owner: str = typer.Option(..., "--owner"),
        description: str = typer.Option("", "--description"),
        attack: list[str] | None = typer.Option(None, "--attack", help="threat-model attack"),
        mitigation: list[str] | None = typer.Option(None, "--mitigation"),
        next_review: str | None = typer.Option(None, "--next-review", help="YYYY-MM-DD"),
        db: str | None = typer.Option(None, "--db", help=DB_HELP),
        config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    ) -> None:
        """Add a risk; its score is likelihood × impact."""
        with open_registry(db, config) as registry:
            row = registry.risks.add(
                title,
                likelihood=likelihood,
                impact=impact,
                owner=owner,
                description=description,
                attacks=attack or [],
                mitigations=mitigation or [],
                next_review=next_review,
            )
        typer.echo(f"risk #{row.id} added (score {row.score})")

    @risk.command("list")
    def list_risks(
        status: str | None = typer.Option(None, "--status"),
        due_by: str | None = typer.Option(None, "--due-by", help="review due by YYYY-MM-DD"),
        as_json_: bool = typer.Option(False, "--json", help="print JSON"),
        db: str | None = typer.Option(None, "--db", help=DB_HELP),
        config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    ) -> None:
        """List risks, highest score first."""
        due = parse_date(due_by, "--due-by") if due_by else None
        with open_registry(db, config) as registry:
            rows = registry.risks.list(status=status, due_by=due)
        if as_json_:
            typer.echo(as_json(rows))
        else:
            _print_risks(rows)

    @risk.command("show")
    def show_risk(
        risk_id: int = typer.Argument(...),
        db: str | None = typer.Option(None, "--db", help=DB_HELP),
        config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    ) -> None:
        """Show one risk as JSON."""
        with open_registry(db, config) as registry:
            typer.echo(as_json(registry.risks.get(risk_id)))

    @risk.command("update")
    def update_risk(
        risk_id: int = typer.Argument(...),
        title: str | None = typer.Option(None, "--title"),
        description: str | None = typer.Option(None, "--description"),
        likelihood: int | None = typer.Option(None, "--likelihood"),
        impact: int | None = typer.Option(None, "--impact"),
        owner: str | None = typer.Option(None, "--owner"),
        status: str | None = typer.Option(
            None, "--status", help="open, mitigating, accepted or closed"
        ),
        attack: list[str] | None = typer.Option(None, "--attack", help="replaces the list"),
        mitigation: list[str] | None = typer.Option(None, "--mitigation", help="replaces"),
        next_review: str | None = typer.Option(None, "--next-review", help="YYYY-MM-DD"),
        db: str | None = typer.Option(None, "--db", help=DB_HELP),
        config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    ) -> None:
        """Change the given fields of a risk."""
        with open_registry(db, config) as registry:
            row = registry.risks.update(
                risk_id,
                title=title,
                description=description,
                likelihood=likelihood,
                impact=impact,
                owner=owner,
                status=status,
                attacks=attack,
                mitigations=mitigation,
                next_review=next_review,
            )
        typer.echo(f"risk #{row.id} updated (score {row.score}, {row.status.value})")

    app.add_typer(risk, name="risk")


def _vulns(app: typer.Typer) -> None:
    vuln = typer.Typer(
        help="Vulnerability reports: open → triaged → fixed → verified.", no_args_is_help=True
    )

    @vuln.command("new")
    def new_vuln(
        from_file: Path | None = typer.Option(None, "--from", help="a filled-in template"),
        print_template: bool = typer.Option(False, "--template", help="print a template"),
        title: str | None = typer.Option(None, "--title"),
        severity: str | None = typer.Option(None, "--severity", help="low … critical"),
        affected: list[str] | None = typer.Option(None, "--affected", help="NAME:VERSION"),
        owner: str | None = typer.Option(None, "--owner"),
        attack: str | None = typer.Option(None, "--attack"),
        attack_version: str | None = typer.Option(None, "--attack-version"),
        param: list[str] | None = typer.Option(None, "--param", help="KEY=VALUE"),
        seed: int = typer.Option(0, "--seed"),
        samples: str | None = typer.Option(None, "--samples", help="ids, e.g. 17,40"),
        db: str | None = typer.Option(None, "--db", help=DB_HELP),
        config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    ) -> None:
        """File a report from a template file (--from) or from options."""
        if print_template:
            typer.echo(yaml.safe_dump(template(), sort_keys=False), nl=False)
            return
        if from_file is not None:
            report = _load_report(from_file)
        else:
            report = {
                "title": title,
                "severity": severity,
                "affected": affected or [],
                "owner": owner,
                "reproduction": {
                    "attack": attack,
                    "attack_version": attack_version,
                    "params": _params(param),
                    "seed": seed,
                    "sample_ids": _ids(samples),
                },
            }
        with open_registry(db, config) as registry:
            row = registry.vulns.from_template(report)
        typer.echo(f"vulnerability #{row.id} filed ({row.status.value})")

    @vuln.command("list")
    def list_vulns(
        status: str | None = typer.Option(None, "--status"),
        model: str | None = typer.Option(None, "--model", help="model name"),
        as_json_: bool = typer.Option(False, "--json", help="print JSON"),
        db: str | None = typer.Option(None, "--db", help=DB_HELP),
        config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    ) -> None:
        """List vulnerability reports."""
        with open_registry(db, config) as registry:
            rows = registry.vulns.list(status=status, model=model)
        if as_json_:
            typer.echo(as_json(rows))
            return
        table = Table(title="Vulnerabilities")
        for column in ("id", "severity", "status", "title", "affected", "attack", "owner"):
            table.add_column(column)
        for v in rows:
            table.add_row(
                str(v.id),
                v.severity.value,
                v.status.value,
                v.title,
                ", ".join(v.affected),
                v.reproduction.attack,
                v.owner,
            )
        Console().print(table)

    @vuln.command("show")
    def show_vuln(
        vuln_id: int = typer.Argument(...),
        as_json_: bool = typer.Option(False, "--json", help="print JSON"),
        db: str | None = typer.Option(None, "--db", help=DB_HELP),
        config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    ) -> None:
        """Show one report."""
        with open_registry(db, config) as registry:
            row = registry.vulns.get(vuln_id)
        if as_json_:
            typer.echo(as_json(row))
        else:
            _print_vuln(row)

    @vuln.command("triage")
    def triage_vuln(
        vuln_id: int = typer.Argument(...),
        note: str | None = typer.Option(None, "--note"),
        owner: str | None = typer.Option(None, "--owner", help="re-assign"),
        severity: str | None = typer.Option(None, "--severity", help="re-grade"),
        db: str | None = typer.Option(None, "--db", help=DB_HELP),
        config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    ) -> None:
        """open → triaged."""
        with open_registry(db, config) as registry:
            row = registry.vulns.triage(vuln_id, note=note, owner=owner, severity=severity)
        typer.echo(f"vulnerability #{row.id} {row.status.value}")

    @vuln.command("fix")
    def fix_vuln(
        vuln_id: int = typer.Argument(...),
        remediation: str = typer.Option(..., "--remediation", help="what was changed"),
        db: str | None = typer.Option(None, "--db", help=DB_HELP),
        config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    ) -> None:
        """triaged → fixed, with remediation notes."""
        with open_registry(db, config) as registry:
            row = registry.vulns.fix(vuln_id, remediation=remediation)
        typer.echo(f"vulnerability #{row.id} {row.status.value}")

    @vuln.command("verify")
    def verify_vuln(
        vuln_id: int = typer.Argument(...),
        evaluation_of: str = typer.Option(
            ..., "--evaluation-of", help="NAME:VERSION of a later version (its newest evaluation)"
        ),
        db: str | None = typer.Option(None, "--db", help=DB_HELP),
        config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    ) -> None:
        """fixed → verified, only if that evaluation shows the attack no longer succeeds."""
        with open_registry(db, config) as registry:
            row = registry.vulns.verify(vuln_id, evaluation_of=evaluation_of)
        typer.echo(f"vulnerability #{row.id} verified by evaluation #{row.verified_by_evaluation}")

    app.add_typer(vuln, name="vuln")


def _audit(app: typer.Typer) -> None:
    audit = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)

    @audit.command("verify")
    def verify_audit(
        expect: str | None = typer.Option(
            None, "--expect", help="an entry hash recorded earlier (e.g. in a CI log)"
        ),
        db: str | None = typer.Option(None, "--db", help=DB_HELP),
        config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    ) -> None:
        """Check the chain, its head and every audited record; exit 1 on any problem."""
        with open_registry(db, config) as registry:
            report = registry.audit.verify(expected_head=expect)
        if not report.ok:
            for problem in report.problems:
                typer.echo(f"  {problem}", err=True)
            raise IntegrityError(
                f"audit log verification failed with {len(report.problems)} problem(s)"
            )
        typer.echo(f"audit log OK: {report.entries} entries, head {report.head}")

    @audit.command("log")
    def show_log(
        limit: int = typer.Option(20, "--limit", help="the last N entries (0 = all)"),
        entity: str | None = typer.Option(None, "--entity", help="e.g. model_versions, risks"),
        entity_id: str | None = typer.Option(None, "--id", help="only this record"),
        as_json_: bool = typer.Option(False, "--json", help="print JSON"),
        db: str | None = typer.Option(None, "--db", help=DB_HELP),
        config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP),
    ) -> None:
        """Show audit entries, oldest first."""
        with open_registry(db, config) as registry:
            entries = registry.audit.log(limit=limit or None, entity=entity, entity_id=entity_id)
        if as_json_:
            typer.echo(as_json(entries))
            return
        table = Table(title="Audit log")
        for column in ("#", "at", "actor", "action", "record", "hash"):
            table.add_column(column)
        for e in entries:
            table.add_row(
                str(e.seq),
                f"{e.at:%Y-%m-%d %H:%M:%S}",
                e.actor,
                e.action,
                f"{e.entity}/{e.entity_id}",
                e.entry_hash[:12],
            )
        Console().print(table)

    app.add_typer(audit, name="audit")


def register(app: typer.Typer) -> None:
    _owners(app)
    _risks(app)
    _vulns(app)
    _audit(app)
