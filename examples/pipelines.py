"""Three example workflows that do small, real work on a bundled data set:

- ``data_pipeline``: the spec's confirmation example — fetch orders, pseudonymise the
  customers' e-mail addresses after a person confirms, save the result as JSON.
- ``configurable_pipeline``: the spec's user-input example — a person sets the threshold,
  mode and batch size used to select orders.
- ``quick_approval``: a pause with a one-minute deadline that cancels the run if nobody
  decides, to watch a timeout happen.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import statistics
from datetime import timedelta
from pathlib import Path
from typing import Any

from engine import OnReject, Step, StepInput, StepOutput, UserInputField, Workflow

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

workflows = [data_pipeline, configurable_pipeline, quick_approval]
