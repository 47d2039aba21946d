"""Example workflows that do small, real work on a bundled data set:

- ``data_pipeline``: the spec's confirmation example — fetch orders, pseudonymise the
  customers' e-mail addresses after a person confirms, save the result as JSON.
- ``configurable_pipeline``: the spec's user-input example — a person sets the threshold,
  mode and batch size used to select orders.
- ``quick_approval``: a pause with a one-minute deadline that cancels the run if nobody
  decides, to watch a timeout happen.
- ``order_triage``: a Router whose route a person chooses (refund, replace or escalate).
- ``summary_review``: a summary whose output a person reviews: approve, edit it, or reject
  it with feedback (it is written again, up to three attempts).
- ``flaky_export``: an export that fails on its first attempt and pauses: retry or skip.
- ``release_signoff``: legal and security sign off in parallel, each on its own; then a
  confirmed group of steps (the message says which) ships the release.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import statistics
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from engine import (
    OnError,
    OnReject,
    Parallel,
    Router,
    Step,
    StepInput,
    StepOutput,
    Steps,
    UserInputField,
    Workflow,
)

DATA = Path(__file__).with_name("orders.csv")
OUTPUT_DIR = Path(os.environ.get("SIGNOFF_EXAMPLES_OUTPUT", "signoff-data"))


def load_orders() -> list[dict[str, Any]]:
    with DATA.open(newline="") as handle:
        return [{**row, "amount": float(row["amount"])} for row in csv.DictReader(handle)]


def fetch_data(step_input: StepInput) -> StepOutput:
    orders = load_orders()
    return StepOutput(
        content={"orders": len(orders), "total": round(sum(o["amount"] for o in orders), 2)}
    )


def process_data(step_input: StepInput) -> StepOutput:
    rows = []
    for order in load_orders():
        digest = hashlib.sha256(order["email"].encode()).hexdigest()[:12]
        rows.append({**order, "email": f"customer-{digest}"})
    return StepOutput(content={"pseudonymised": len(rows), "sample": rows[0]})


def save_results(step_input: StepInput) -> StepOutput:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / f"{step_input.run_id}.json"
    previous = step_input.previous_step_content
    path.write_text(json.dumps({"input": step_input.input, "result": previous}, indent=2))
    return StepOutput(content=f"saved {path}")


def analyze(step_input: StepInput) -> StepOutput:
    amounts = [o["amount"] for o in load_orders()]
    return StepOutput(
        content={"orders": len(amounts), "median": statistics.median(amounts), "max": max(amounts)}
    )


def process_with_params(step_input: StepInput) -> StepOutput:
    user_input = step_input.additional_data.get("user_input", {})
    threshold = user_input.get("threshold", 0.5)
    mode = user_input.get("mode", "fast")
    batch_size = user_input.get("batch_size") or 10
    orders = load_orders()
    top = max(o["amount"] for o in orders)
    selected = [o for o in orders if o["amount"] >= threshold * top]
    if mode == "accurate":
        selected.sort(key=lambda o: -o["amount"])
    batches = (len(selected) + batch_size - 1) // batch_size
    return StepOutput(
        content=f"Processed with threshold={threshold}, mode={mode}: "
        f"{len(selected)} orders in {batches} batches"
    )


def report(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"Report: {step_input.previous_step_content}")


def deploy(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"deployed {step_input.input or 'the latest build'}")


data_pipeline = Workflow(
    name="data_pipeline",
    description="Fetch orders, pseudonymise e-mails (needs confirmation), save as JSON",
    steps=[
        Step(name="fetch_data", executor=fetch_data),
        Step(
            name="process_data",
            executor=process_data,
            requires_confirmation=True,
            confirmation_message="Process sensitive data?",
            on_reject=OnReject.skip,
        ),
        Step(name="save_results", executor=save_results),
    ],
)

configurable_pipeline = Workflow(
    name="configurable_pipeline",
    description="Select orders with parameters a person sets",
    steps=[
        Step(name="analyze", executor=analyze),
        Step(
            name="process",
            executor=process_with_params,
            requires_user_input=True,
            user_input_message="Configure processing:",
            user_input_schema=[
                UserInputField(
                    name="threshold",
                    field_type="float",
                    description="Processing threshold (0.0-1.0)",
                    required=True,
                ),
                UserInputField(
                    name="mode",
                    field_type="str",
                    description="Mode: 'fast' or 'accurate'",
                    required=True,
                    allowed_values=["fast", "accurate"],
                ),
                UserInputField(
                    name="batch_size",
                    field_type="int",
                    description="Records per batch",
                    required=False,
                ),
            ],
        ),
        Step(name="report", executor=report),
    ],
)

quick_approval = Workflow(
    name="quick_approval",
    description="Deploy after an approval that times out (and cancels) after one minute",
    steps=[
        Step(
            name="deploy",
            executor=deploy,
            requires_confirmation=True,
            confirmation_message="Deploy now? Cancels itself in one minute.",
            on_reject=OnReject.cancel,
            pause_timeout=timedelta(minutes=1),
        ),
    ],
)


def refund(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"refunded order {step_input.input or '1001'} in full")


def replace(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"replacement shipped for order {step_input.input or '1001'}")


def escalate(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"order {step_input.input or '1001'} handed to support")


def notify_customer(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"customer told: {step_input.previous_step_content}")


order_triage = Workflow(
    name="order_triage",
    description="A person chooses how a complaint is handled: refund, replace or escalate",
    steps=[
        Router(
            name="triage",
            choices=[
                Step(name="refund", executor=refund, description="Refund the customer in full"),
                Step(name="replace", executor=replace, description="Ship a replacement"),
                Step(name="escalate", executor=escalate, description="Hand it to support"),
            ],
            requires_user_input=True,
            user_input_message="How should this complaint be handled?",
        ),
        Step(name="notify_customer", executor=notify_customer),
    ],
)


def summarize(step_input: StepInput) -> StepOutput:
    orders = load_orders()
    total = sum(o["amount"] for o in orders)
    summary = f"{len(orders)} orders, {total:.2f} in total"
    if step_input.rejection_feedback:
        summary += f" (rewritten: {step_input.rejection_feedback})"
    return StepOutput(content=summary)


def publish(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"published: {step_input.previous_step_content}")


summary_review = Workflow(
    name="summary_review",
    description="Summarise the orders; a person reviews the summary before it is published",
    steps=[
        Step(
            name="summarize",
            executor=summarize,
            requires_output_review=True,
            output_review_message="Publish this summary?",
            on_reject=OnReject.retry,
            hitl_max_retries=2,
        ),
        Step(name="publish", executor=publish),
    ],
)

_export_attempts: dict[str, int] = {}
_export_lock = threading.Lock()


def export_orders(step_input: StepInput) -> StepOutput:
    """Fails on each run's first attempt (a warehouse that drops the first connection)."""
    with _export_lock:
        attempt = _export_attempts[step_input.run_id or ""] = (
            _export_attempts.get(step_input.run_id or "", 0) + 1
        )
    if attempt == 1:
        raise ConnectionError("the warehouse reset the connection (attempt 1)")
    return StepOutput(content=f"exported {len(load_orders())} orders on attempt {attempt}")


flaky_export = Workflow(
    name="flaky_export",
    description="An export that fails once and pauses: a person retries or skips it",
    steps=[
        Step(name="export_orders", executor=export_orders, on_error=OnError.pause),
        Step(name="report", executor=report),
    ],
)


def signed_off(area: str) -> Any:
    def run(step_input: StepInput) -> StepOutput:
        return StepOutput(content=f"{area} signed off {step_input.input or 'the release'}")

    run.__name__ = f"{area}_review"
    return run


def tag_release(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"tagged {step_input.input or 'v1.0'}")


def publish_release(step_input: StepInput) -> StepOutput:
    return StepOutput(content=f"published {step_input.input or 'v1.0'}")


release_signoff = Workflow(
    name="release_signoff",
    description="Legal and security sign off in parallel, then a confirmed release",
    steps=[
        Parallel(
            Step(
                name="legal_review",
                executor=signed_off("legal"),
                requires_confirmation=True,
                confirmation_message="Licences and notices in order?",
            ),
            Step(
                name="security_review",
                executor=signed_off("security"),
                requires_confirmation=True,
                confirmation_message="No open critical findings?",
            ),
            name="reviews",
        ),
        Steps(
            name="ship",
            steps=[
                Step(name="tag_release", executor=tag_release),
                Step(name="publish_release", executor=publish_release),
            ],
            requires_confirmation=True,
            confirmation_message="Ship the release?",
            on_reject=OnReject.cancel,
        ),
    ],
)

workflows = [
    data_pipeline,
    configurable_pipeline,
    quick_approval,
    order_triage,
    summary_review,
    flaky_export,
    release_signoff,
]
