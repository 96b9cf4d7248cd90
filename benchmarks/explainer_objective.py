"""Stage-2 objectives on the demo's data, black box and distilled student.

``python -m benchmarks.explainer_objective --checkpoint akd-demo/checkpoint NAME=JSON ...``
rebuilds the demo's black box (same data, seed and training), loads the
student of a demo checkpoint, trains one explanation network per variant
(``NAME={"objective": "curve", ...}``: :class:`~captum_akd.distill.ExplainerConfig`
fields; ``"init": true`` fine-tunes the checkpoint's explainer instead of a
fresh one; ``"seed": N`` draws its initialisation and training from seed N
instead of the demo's), and scores every variant, Grad-CAM and the three controls on the
black box under the protocol (intervals, paired verdicts against Grad-CAM);
``--smooth 1 2 4`` adds the checkpoint's own maps blurred by Gaussians of those
standard deviations (pixels); ``--cam-blend 0.5 1`` adds them mixed with
the student's own class activation map at those weights (1: the CAM
alone); ``--rise 4000`` adds RISE with that many masks run on the black box
and on the checkpoint's student (both judged by the black box: the surrogate
ceiling on these images); ``--ensemble`` adds the mean of the variants' maps,
and the mean of theirs and the checkpoint's (``--members-unscored`` then leaves
the variants themselves out of the scoring).
The scored images are the demo's first test images; stage 2's held-out data
(best-epoch choice) are the test images after them, so no scored image is
seen in training or selection. One JSON line per variant is printed and
``results.json`` is written to ``--out``.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
from torch.nn.functional import interpolate
from torch.utils.data import TensorDataset
from torchvision.transforms.functional import gaussian_blur

from benchmarks.common import write_results
from captum_akd import AttentiveDistillationAttribution
from captum_akd.demo import DemoSettings, demo_data, demo_target
from captum_akd.distill import train_explainer
from captum_akd.evaluation import (
    RISE_LABEL,
    RISE_STUDENT_LABEL,
    bootstrap_cells,
    build_methods,
    compare_methods,
    paired_differences,
)
from captum_akd.models import ExplanationNet


class Blurred:
    """Another attribution's maps, Gaussian-blurred: are smoother maps more faithful?"""

    def __init__(self, attr: AttentiveDistillationAttribution, sigma: float) -> None:
        self.attr, self.sigma = attr, sigma

    def attribute(self, inputs: torch.Tensor, target: torch.Tensor, **kwargs) -> torch.Tensor:
        maps = self.attr.attribute(inputs, target=target, **kwargs)
        taps = 2 * int(3 * self.sigma) + 1
        return gaussian_blur(maps, [taps, taps], [self.sigma, self.sigma])


class CamBlend:
    """The explainer's maps mixed with its student's own class activation map.

    The CAM comes from the same student forward pass, so the mix costs nothing;
    ``weight`` 1 is the student's CAM alone (bilinear to the image, ReLU, each
    map divided by its maximum), 0 the explainer alone.
    """

    def __init__(self, attr: AttentiveDistillationAttribution, weight: float) -> None:
        self.attr, self.weight = attr, weight

    @torch.no_grad()
    def attribute(self, inputs: torch.Tensor, target: torch.Tensor, **kwargs) -> torch.Tensor:
        images = inputs
        labels = torch.as_tensor(target, device=images.device).long().expand(len(images))
        student, explainer = self.attr.student.eval(), self.attr.explainer.eval()
        # explain()'s steps spelled out: its CAM is needed too, and one student pass gives both.
        output = student.forward_features(images)
        cam = student.class_activation_map(output.features[-1], labels)
        maps = explainer(output.features, output.attention, cam, student.fc.weight[labels],
                         tuple(images.shape[-2:]))
        cam = interpolate(cam, size=images.shape[-2:], mode="bilinear",
                          align_corners=False).relu()
        cam = cam / cam.flatten(1).amax(1).clamp_min(1e-12)[:, None, None, None]
        return (1 - self.weight) * maps + self.weight * cam


class Mean:
    """The mean of several attributions' maps: does averaging explainers of one student help?"""

    def __init__(self, members: list) -> None:
        self.members = members

    def attribute(self, inputs: torch.Tensor, target: torch.Tensor, **kwargs) -> torch.Tensor:
        return torch.stack([m.attribute(inputs, target=target, **kwargs)
                            for m in self.members]).mean(0)


KEYS = ("insertion", "deletion", "deletion_blur", "road_combined", "energy_pointing_game")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_demo_arguments(parser)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--no-baselines", action="store_true",
                        help="score the variants only (Grad-CAM and controls not re-run)")
    parser.add_argument("--smooth", type=float, nargs="*", default=[], metavar="SIGMA",
                        help="also score the checkpoint's maps blurred by a Gaussian of each "
                             "standard deviation (pixels)")
    parser.add_argument("--ensemble", action="store_true",
                        help="also score the mean of the variants' maps, and of theirs and "
                             "the checkpoint's")
    parser.add_argument("--members-unscored", action="store_true",
                        help="with --ensemble: score the means only, not each variant")
    parser.add_argument("--cam-blend", type=float, nargs="*", default=[], metavar="WEIGHT",
                        help="also score the checkpoint's maps mixed with its student's CAM at "
                             "each weight (1: the CAM alone)")
    parser.add_argument("--rise", type=int, default=0, metavar="MASKS",
                        help="also score RISE with MASKS masks run on the black box and on the "
                             "checkpoint's student (the surrogate ceiling on these images)")
    parser.add_argument("variants", nargs="*", metavar="NAME=JSON")
    args = parser.parse_args()
    s, train, test, target, loaded = load_demo(args)
    student = loaded.student
    held_out = TensorDataset(test["image"][args.images:], test["label"][args.images:])
    methods, trained = {}, {}
    for spec in args.variants:
        name, _, options = spec.partition("=")
        options = json.loads(options or "{}")
        init = options.pop("init", False)
        seed = options.pop("seed", s.seed)
        torch.manual_seed(seed)
        explainer = (copy.deepcopy(loaded.explainer) if init
                     else ExplanationNet.for_student(student, width=s.explainer_width))
        started = time.time()
        attr = train_explainer(target, TensorDataset(train["image"], train["label"]),
                               student=student, explainer=explainer, val_data=held_out,
                               epochs=options.pop("epochs", args.epochs), seed=seed,
                               quiet=True, **{"area_target": s.area_target, **options})
        trained[name] = {"options": {**options, "init": init, "seed": seed},
                         "seconds": round(time.time() - started),
                         "report": {k: v for k, v in
                                    attr.metadata["fidelity"]["explainer"].items()
                                    if isinstance(v, (int, float, str)) or k == "restarts"}}
        print(json.dumps({name: trained[name]}), flush=True)
        methods[name] = attr
    if args.ensemble:
        members = list(methods.values())
        if args.members_unscored:
            methods = {}
        methods[f"mean of the {len(members)} variants' maps"] = Mean(members)
        methods[f"mean of the {len(members)} variants' and the checkpoint's maps"] = Mean(
            [*members, loaded])
    methods["checkpoint's explainer"] = loaded
    for sigma in args.smooth:
        methods[f"checkpoint's explainer, maps blurred (sigma {sigma:g})"] = Blurred(loaded, sigma)
    for weight in args.cam_blend:
        methods[f"checkpoint's explainer mixed with its student's CAM (weight {weight:g})"] = (
            CamBlend(loaded, weight))
    if not args.no_baselines:
        methods.update(build_methods(target, loaded, target.features[-1],
                                     methods=("gradcam",), seed=s.seed))
    if args.rise:
        methods.update(build_methods(target, loaded, target.features[-1],
                                     methods=("rise", "rise-student"), controls=False,
                                     rise_masks=args.rise, seed=s.seed, progress=True))
    rows = score_rows(target, methods, test, args.images, args.road_images, args.threads, s)
    for name in rows:
        rows[name].update(trained.get(name, {}))
        print(json.dumps({name: {k: v for k, v in rows[name].items() if k != "per_image"}}))
    flags = ["--checkpoint <the demo's checkpoint>", f"--threads {args.threads}"]
    for name in ("images", "road_images", "epochs"):
        if getattr(args, name) != parser.get_default(name):
            flags.append(f"--{name.replace('_', '-')} {getattr(args, name)}")
    if args.no_baselines:
        flags.append("--no-baselines")
    if args.smooth:
        flags.append(f"--smooth {' '.join(map(str, args.smooth))}")
    if args.cam_blend:
        flags.append(f"--cam-blend {' '.join(map(str, args.cam_blend))}")
    if args.rise:
        flags.append(f"--rise {args.rise}")
    if args.ensemble:
        flags.append("--ensemble")
    if args.members_unscored:
        flags.append("--members-unscored")
    flags += ["--out <dir>", *(f"'{v}'" for v in args.variants)]
    text = json.dumps({"command": "python -m benchmarks.explainer_objective " + " ".join(flags),
                       "images": args.images, "road_images": args.road_images,
                       "epochs": args.epochs, "rows": rows, "trained": trained}, indent=1)
    write_results(Path(args.out), {"results.json": lambda path: path.write_text(text)},
                  overwrite=args.overwrite)


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every script that scores explainers on a demo checkpoint."""
    parser.add_argument("--checkpoint", required=True, help="a demo checkpoint directory")
    parser.add_argument("--images", type=int, default=200, help="scored test images")
    parser.add_argument("--road-images", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads; the black box is retrained at each run and its "
                             "weights depend on this, so compare runs with the same count")
    parser.add_argument("--out", required=True, help="results directory")
    parser.add_argument("--overwrite", action="store_true")


def load_demo(args: argparse.Namespace) -> tuple[DemoSettings, dict, dict, torch.nn.Module,
                                                 AttentiveDistillationAttribution]:
    """The demo's settings, data and black box, and the checkpoint on that black box."""
    torch.set_num_threads(args.threads)
    s = DemoSettings()
    train, test = demo_data(s, progress=False)
    target = demo_target(s, train, progress=False)
    return s, train, test, target, AttentiveDistillationAttribution.load(args.checkpoint, target)


def score_rows(target: torch.nn.Module, methods: dict, test: dict, images: int,
               road_images: int, threads: int, s: DemoSettings) -> dict[str, dict]:
    """Score ``methods`` on the black box on the first ``images`` test images.

    Args:
        target: the demo's black box.
        methods: name -> attribution; with a ``"Grad-CAM"`` entry every other
            row gets its paired verdicts against it, else against the first.
        test: the demo's test tensors (:func:`~captum_akd.demo.demo_data`).
        images: scored images; ROAD on the first ``road_images``.
        road_images: images of ROAD.
        threads: torch threads of ROAD's imputation.
        s: the demo's settings (seed, pixels per step).

    Returns:
        name -> ``{metric: [mean, low, high], "vs_<reference>": {metric: verdict},
        "per_image": {metric: [score, ...]}}`` (ROAD's list covers the first
        ``road_images`` images).
    """
    comparison = compare_methods(target, methods, test["image"][:images],
                                 masks=test["mask"][:images], step=s.step, batch_size=64,
                                 road_images=road_images, road_threads=threads, progress=True,
                                 # Untimed: the rows report no speed, and timing RISE on
                                 # every image would repeat its thousands of calls per image.
                                 speed_images={RISE_LABEL: 0, RISE_STUDENT_LABEL: 0})
    cells = bootstrap_cells(comparison, seed=s.seed)
    reference = "Grad-CAM" if "Grad-CAM" in methods else next(iter(methods))
    paired = paired_differences(comparison, reference, seed=s.seed)
    rows = {}
    for name in methods:
        row = {k: [round(cells[name][k].mean, 4), round(cells[name][k].low, 4),
                   round(cells[name][k].high, 4)] for k in KEYS if k in cells[name]}
        if name in paired:
            row["vs_" + reference] = {k: paired[name][k].verdict for k in KEYS
                                      if k in paired[name]}
        # Kept so that any two rows can be paired image by image later.
        row["per_image"] = {k: [round(float(v), 5) for v in values]
                            for k, values in comparison[name].per_image().items() if k in KEYS}
        rows[name] = row
    return rows


if __name__ == "__main__":
    main()
