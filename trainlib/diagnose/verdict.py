"""The verdict: which part is at fault (data, model or loss/optimizer), how sure, and what decided it.

A root cause seen at step 0 or before training (labels, identical or unnormalized inputs, the
initial loss, the forward pass at init, a symmetric init) decides on its own: nothing that
happens later can explain it away. Some symptoms come from any part (a loss that does not
fall, vanishing gradients, dead units, a run that ends at chance accuracy): the run's verdict
is then ambiguous, and the probes decide (see probes.py):

  overfit_one_batch: the reference cannot fit one batch   -> model
                     only the run's optimizer cannot      -> optimizer (lr_probe: "lr too low" when it says so)
                     both can, but the run did not learn  -> label_shuffle / zero_inputs: no signal -> data
  nothing decisive                                        -> the curves' culprit, low confidence

Confidence is a stated level per kind of evidence, not a calibrated probability.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from trainlib.live_checks.catalog import CHECKS, DATA, MODEL, OPTIM
from trainlib.live_checks.findings import Finding
from trainlib.diagnose.probes import ProbeResult

ROOT_CAUSES = {"labels", "identical_inputs", "inputs_not_normalized", "initial_loss", "exploding_activations",
               "symmetric_units"}
AMBIGUOUS = {"not_decreasing", "vanishing_gradients", "dead_relu"}  # symptoms any part can produce
CHANCE_MARGIN = 0.1  # best valid accuracy within this of 1/K: the run learned nothing
ADVICE = {
    "lr_too_low": "raise the learning rate towards the range test's suggestion (`launch lr-find`)",
    "optimizer_cannot_fit": "start from settings the reference optimizer fits with: check weight decay, momentum "
                            "and the lr (`launch lr-find`)",
    "model_cannot_fit": "check the model: a network that cannot fit one batch has a bug in its forward pass or "
                        "its init, or no capacity",
    "label_shuffle": "check the labels: are they aligned with their inputs (shuffled or mis-joined files)?",
    "zero_inputs": "check that the inputs reach the model: the loader, the transforms, a forward that ignores x",
}
CONFIDENCE = {"root_cause": 0.9, "probe": 0.85, "finding": 0.7, "probe_weak": 0.6, "fallback": 0.4, "none": 0.8}


@dataclass
class Verdict:
    culprit: str | None  # DATA, MODEL, OPTIM or None (nothing wrong found)
    confidence: float
    summary: str
    deciding_check: str | None = None  # the finding that decided, or
    deciding_probe: str | None = None  # the probe that decided
    evidence: list[str] = field(default_factory=list)
    ambiguous: str | None = None  # why the findings alone could not decide
    advice: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        """One line for a table of runs: `healthy`, or the culprit and what decided it."""
        if self.culprit is None:
            return "healthy" if self.confidence else self.summary
        return f"{self.culprit}: {self.summary}"


def ranked(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: CHECKS[f.check].rank)


def at_chance(accuracies: list[float], num_classes: int | None) -> bool:
    return bool(accuracies) and bool(num_classes) and max(accuracies) <= 1 / num_classes + CHANCE_MARGIN


def ambiguity(findings: list[Finding] | None, train_acc: list[float], valid_acc: list[float],
              num_classes: int | None) -> str | None:
    """Why the findings cannot tell the parts apart (the probes should run), or None. A run whose first
    warning is a NaN or a divergence is not ambiguous: the step-0 checks rule out the init and inputs."""
    if findings is None:
        return None
    if not findings:  # learned nothing, not even the train split (a lagging valid acc alone is no fault)
        if at_chance(train_acc, num_classes) and at_chance(valid_acc, num_classes):
            return (f"the run stays at chance accuracy (best train acc {max(train_acc):.1%}, valid "
                    f"{max(valid_acc):.1%}, K = {num_classes}) with no warning")
        return None
    top = ranked(findings)[0]
    if top.check in AMBIGUOUS:
        return f"'{CHECKS[top.check].title}' can come from the data, the model or the optimizer"
    return None


def decide(findings: list[Finding] | None, probes: list[ProbeResult] | None, ambiguous: str | None) -> Verdict:
    if findings is None and not probes:
        return Verdict(None, 0.0, "no diagnostics were recorded for this run")
    findings = ranked(findings or [])
    top = findings[0] if findings else None
    if top is not None and top.check in ROOT_CAUSES:
        return _from_finding(top, findings, "root_cause", ambiguous)
    by_probe = _from_probes({p.name: p for p in probes or []}, ambiguous)
    if by_probe is not None:
        return by_probe
    if top is None:
        probed = " and the probes found every part able to learn" if probes else ""
        return Verdict(None, CONFIDENCE["none"], f"no check found a problem with the data, the model or the "
                       f"loss/optimizer{probed}",
                       evidence=[p.message for p in probes or []])
    return _from_finding(top, findings, "fallback" if ambiguous else "finding", ambiguous, probes)


def _from_finding(top: Finding, findings: list[Finding], kind: str, ambiguous: str | None,
                  probes: list[ProbeResult] | None = None) -> Verdict:
    evidence = [f"{CHECKS[f.check].title}: {f.line()}" for f in findings if f.culprit == top.culprit]
    evidence += [f"probe {p.name}: {p.message}" for p in probes or []]
    hedge = " (the probes did not decide; this is the curves' reading)" if kind == "fallback" else ""
    return Verdict(top.culprit, CONFIDENCE[kind], f"{CHECKS[top.check].title}{hedge}", deciding_check=top.check,
                   evidence=evidence, ambiguous=ambiguous, advice=CHECKS[top.check].advice)


def _from_probes(probes: dict[str, ProbeResult], ambiguous: str | None) -> Verdict | None:
    overfit, lr = probes.get("overfit_one_batch"), probes.get("lr_probe")
    shuffle, zero = probes.get("label_shuffle"), probes.get("zero_inputs")

    def verdict(culprit: str, probe: ProbeResult, summary: str, *more: ProbeResult | None, kind: str = "probe"):
        evidence = [f"probe {p.name}: {p.message}" for p in (probe, *more) if p is not None]
        advice = ADVICE.get(probe.outcome) or ADVICE[probe.name]
        return Verdict(culprit, CONFIDENCE[kind], summary, deciding_probe=probe.name, evidence=evidence,
                       ambiguous=ambiguous, advice=advice)

    if overfit is not None and overfit.outcome == "optimizer_cannot_fit":
        if lr is not None and lr.outcome == "lr_too_low":
            return verdict(OPTIM, lr, "the learning rate is too low", overfit)
        return verdict(OPTIM, overfit, "the optimizer's settings keep the model from fitting even one batch", lr)
    if overfit is not None and overfit.outcome == "model_cannot_fit":
        return verdict(MODEL, overfit, "the model cannot fit even one batch", zero, kind="probe_weak")
    if shuffle is not None and shuffle.outcome == "no_signal":
        return verdict(DATA, shuffle, "the labels carry no signal for this model", overfit, zero)
    if zero is not None and zero.outcome == "no_signal":
        return verdict(DATA, zero, "the inputs do not reach the model", overfit, shuffle)
    return None
