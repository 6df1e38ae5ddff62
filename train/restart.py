"""Start a new learning-rate schedule from a float checkpoint (a warm restart): the weights and Adam's state
are kept, the step and time clock go back to zero, so that `pixzip train --resume` on OUT_CHECKPOINT's folder
runs a whole new schedule (warmup, cosine, quantization-aware phase) with the budget and settings it is given.

    python train/restart.py FLOAT_CHECKPOINT OUT_CHECKPOINT

The earlier run's log is kept, followed by an entry naming where the restart began. Give the resumed run a
seed other than the earlier run's: its crops are drawn from the seed and the step, and the steps begin again.
"""
import sys
from pathlib import Path

import torch


def main(source: str, target: str) -> None:
    state = torch.load(source, weights_only=False, map_location="cpu")
    if any(k.endswith("scales") and v.abs().sum() > 0 for k, v in state["model"].items()):
        sys.exit(f"{source} is calibrated already: restart from a float checkpoint")
    state["log"] = state["log"] + [{"restart_from": source, "step": state["step"],
                                    "seconds": round(state["seconds"], 1)}]
    state["step"], state["seconds"] = 0, 0.0
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target)
    print(f"{target}: restarts {source} (step {state['log'][-1]['step']}) at step 0")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
