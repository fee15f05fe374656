"""A sweep's report: the trials table with the doctor's verdicts, every trial's curve, parameter
importance, the metric against each parameter, and the best trial's config and command.

Everything is read back from MLflow (the parent run's params say the metric, mode and space), so
it is the same from any machine that reaches the store."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from launcher.report import html
from launcher.report.charts import plot_importance
from launcher.report.importance import Importance, Scored, param_importance
from launcher.report.run_report import rerun_command
from launcher.sweep.pictures import LOG_KINDS, Objective, plot_comparison, plot_parameters, varying_keys
from launcher.sweep.tracking import SweepRun, TrialRow, collect_rows, ranked
from trainlib import tags as tag
from trainlib.tracking.artifact_reads import artifact_text

SCORED = ("FINISHED", "KILLED")  # finished and stopped trials count for the importance


def objective_of(parent) -> Objective:
    """The metric, mode and space of a sweep, from its parent run's params (tune.*, space.KEY = 'KIND ARGS ...')."""
    params = parent.data.params
    kinds = {k.removeprefix("space."): v.split()[0] for k, v in params.items() if k.startswith("space.")}
    return Objective(params.get("tune.metric", "valid/acc"), params.get("tune.mode", "max"), kinds)


@dataclass(frozen=True)
class Drawn:
    """What a sweep's driver holds when it writes the report: the trials it read back from the store and
    its summary's two pictures (comparison.png, parameters.png) drawn from them for `objective`."""

    objective: Objective
    rows: list[TrialRow]
    curves: bytes
    parameters: bytes

    @classmethod
    def from_summary(cls, objective: Objective, rows: list[TrialRow], sweep_dir: Path) -> Drawn:
        return cls(objective, rows, (sweep_dir / "comparison.png").read_bytes(),
                   (sweep_dir / "parameters.png").read_bytes())

    def fits(self, objective: Objective) -> bool:
        """Whether these pictures are the ones the report draws for `objective` (space keys in the same order)."""
        return (self.objective.metric, self.objective.mode, list(self.objective.kinds.items())) == (
            objective.metric, objective.mode, list(objective.kinds.items()))


def draw(uri: str, parent, objective: Objective) -> Drawn:
    """The trials read back from the store and their two pictures, as the sweep's summary draws them."""
    rows = collect_rows(SweepRun(uri, parent.info.experiment_id, parent.info.run_id), objective.metric,
                        objective.mode)
    return Drawn(objective, rows, html.figure_png(lambda out: plot_comparison(rows, objective, out)),
                 html.figure_png(lambda out: plot_parameters(rows, objective, out)))


def build_sweep_report(client, uri: str, parent, drawn: Drawn | None = None) -> tuple[str, str]:
    """(title, HTML page) of the sweep whose parent run is `parent`. `drawn`: the sweep's own summary (its
    driver writes the report right after it), used where it fits the parent's objective, else read and drawn anew."""
    objective = objective_of(parent)
    if drawn is None or not drawn.fits(objective):
        drawn = draw(uri, parent, objective)
    rows = drawn.rows
    best = next(iter(ranked([r for r in rows if r.status in SCORED], objective.mode)), None)
    scored = [Scored(r.params, r.best) for r in rows if r.status in SCORED and r.best is not None]
    importance = param_importance(scored, [k for k, kind in objective.kinds.items() if kind in LOG_KINDS])
    title = (f"sweep {parent.data.tags.get(tag.SWEEP, parent.info.run_name)} ({parent.info.run_id[:8]}): "
             f"{len(rows)} trials, {objective.metric} ({objective.mode})")
    sections = [
        trials_section(client, rows, objective, best),
        html.section("Validation curves", "curves", html.image(drawn.curves, "curves", "curves-chart")),
        importance_section(importance, objective),
        html.section(f"{objective.metric} against each parameter", "parameters",
                     html.image(drawn.parameters, "parameters", "parameters-chart")),
        best_section(client, uri, best, objective),
    ]
    return title, html.page(title, sections)


def trials_section(client, rows: list[TrialRow], objective: Objective, best: TrialRow | None) -> str:
    from trainlib.diagnose.doctor import recorded_verdict

    keys = varying_keys(rows, list(objective.kinds))
    headers = ["trial", "status", "stop reason", *keys, f"best {objective.metric}", f"final {objective.metric}",
               "epochs", "time (s)", "the doctor's verdict"]
    table_rows = [[r.trial, r.status, r.note, *[r.params.get(k) for k in keys], r.best, r.last, r.epochs,
                   round(r.seconds, 1) if r.seconds is not None else None,
                   recorded_verdict(client, r.run_id)[1].line()] for r in rows]
    mark = rows.index(best) if best is not None else None
    return html.section("Trials", "trials", html.paragraph("click a column's header to sort by it", "note"),
                        html.table(headers, table_rows, "trials-table", highlight=mark))


def importance_section(importance: Importance, objective: Objective) -> str:
    parts = [html.paragraph(f"method: {importance.method}; on the {importance.trials} finished and stopped trials "
                            f"(a stopped trial counts with its best {objective.metric})")]
    if importance.caution:
        parts.append(f"<p class=\"caution\" id=\"importance-caution\">{html.escape(importance.caution)}</p>")
    if importance.left_out:
        parts.append(html.paragraph(f"left out (only some trials have them): {', '.join(importance.left_out)}", "note"))
    if importance.ranking:
        png = html.figure_png(lambda out: plot_importance(importance.ranking, objective.metric, "fANOVA", out))
        parts.append(html.image(png, "parameter importance", "importance-chart"))
        parts.append(html.table(["parameter", "importance"], list(importance.ranking.items()), "importance-table"))
    return html.section("Parameter importance", "importance", *parts)


def best_section(client, uri: str, best: TrialRow | None, objective: Objective) -> str:
    if best is None:
        return html.section("Best trial", "best", html.paragraph("no trial finished with a value", "note"))
    config = artifact_text(client.tracking_uri, client.get_run(best.run_id), "config.yaml")
    config = config or "(no config.yaml artifact)"
    return html.section(
        "Best trial", "best",
        html.paragraph(f"{best.trial} (run {best.run_id}): best {objective.metric} {best.best:.4g}"),
        html.paragraph("re-run it (a new run from its config and seed; the metrics are compared at the end):"),
        html.preformatted(rerun_command(best.run_id, uri)), html.paragraph("its config:"), html.preformatted(config))
