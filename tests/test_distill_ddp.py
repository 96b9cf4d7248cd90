"""The same training code (stage 2 with two restarts) under torchrun: 2 processes, gloo."""

import subprocess
import textwrap

import torch
from safetensors.torch import load_file
from test_distill_support import PYTHON, subprocess_env

from captum_akd import AttentiveDistillationAttribution

WORKER = textwrap.dedent(
    """
    import os, sys
    import torch
    torch.set_num_threads(1)
    import torch.distributed as dist
    from safetensors.torch import save_file
    from test_distill_support import make_dataset, square_target, tiny_student
    import captum_akd

    out = sys.argv[1]
    attr = captum_akd.distill(square_target, make_dataset(64), student=tiny_student(),
                              val_data=make_dataset(30, seed=1), out=os.path.join(out, "run"),
                              epochs=2, explainer_epochs=1, batch_size=8, quiet=True,
                              device="cpu", explainer_config={"restarts": 2})
    rank = dist.get_rank()
    state = {"student." + k: v for k, v in attr.student.state_dict().items()}
    state.update({"explainer." + k: v for k, v in attr.explainer.state_dict().items()})
    save_file({k: v.contiguous() for k, v in state.items()},
              os.path.join(out, f"rank{rank}.safetensors"))
    report = attr.metadata["fidelity"]["student"]
    assert report["images"] == 30, report
    # Both restarts were judged on all 30 held-out images, not on one process's share.
    restarts = attr.metadata["fidelity"]["explainer"]["restarts"]
    assert [r["black_box_images"] for r in restarts] == [30, 30], restarts
    assert dist.get_world_size() == 2
    dist.destroy_process_group()
    """
)


def test_two_gloo_processes_end_with_identical_weights(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), str(tmp_path)]
    proc = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rank0 = load_file(tmp_path / "rank0.safetensors")
    rank1 = load_file(tmp_path / "rank1.safetensors")
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    # Only rank 0 wrote the checkpoint, and it holds the trained weights.
    attr = AttentiveDistillationAttribution.load(tmp_path / "run")
    for key, value in attr.student.state_dict().items():
        assert torch.equal(value, rank0["student." + key]), key
    assert attr.metadata["training"]["student"]["world_size"] == 2
