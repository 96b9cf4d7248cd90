"""``captum-akd demo``: the whole pipeline end to end on built-in data.

1. Train a plain CNN on :class:`~captum_akd.data.FineGrainedShapes`; it plays
   the user's black box.
2. Distil it with :func:`captum_akd.distill` (student, then explainer).
3. Explain held-out images with AKD, layer-wise surrogate CAM, Grad-CAM on the
   target, RISE and LIME, and score every map on the black box.
4. Write ``report.md``, ``results.json``, a grid of maps, the insertion and
   deletion curves and the checkpoint to the output directory.

Nothing is downloaded and no user data is needed; the full run fits in about
ten minutes on two CPU cores, ``--quick`` in about two.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from captum_akd._version import __version__
from captum_akd.checkpoint import check_writable, write_directory_atomically, write_json

GRADCAM_NOTE = "Grad-CAM reads the target's gradients (white-box access); the others do not."


@dataclass
class DemoSettings:
    """Sizes of the demo run (the full run and ``--quick`` differ only here).

    Attributes:
        image_size: side of the square images.
        num_classes: classes of the synthetic dataset.
        train_images: images the target and the student are trained on.
        test_images: held-out images for accuracy and fidelity.
        eval_images: held-out images explained and scored by every method.
        target_epochs: epochs of target training.
        target_width: channels of the target CNN's first block.
        student_epochs: stage-1 epochs.
        explainer_epochs: stage-2 epochs.
        student_depth: depth of the CIFAR-style attentive student.
        student_stem_stride: stride of the student's first convolution (2 runs
            the student at the cost of 32 x 32 inputs).
        explainer_width: channels of the explanation network's decoder.
        area_target: share of the image the explainer's masks keep while
            training (the deciding parts cover 2-6 % of an image).
        rise_masks: RISE's number of masks (4000 in the method paper).
        lime_samples: LIME's number of perturbed samples.
        slow_speed_images: images RISE and LIME are timed on.
        step: pixels per insertion/deletion step.
        seed: seed of everything.

    Examples::

        >>> import dataclasses
        >>> longer = dataclasses.replace(DemoSettings(), explainer_epochs=8)
        >>> results = run_demo("akd-demo-long", settings=longer)
    """

    image_size: int = 64
    num_classes: int = 8
    train_images: int = 8000
    test_images: int = 1000
    eval_images: int = 24
    target_epochs: int = 3
    target_width: int = 24
    student_epochs: int = 6
    explainer_epochs: int = 4
    student_depth: int = 8
    student_stem_stride: int = 2
    explainer_width: int = 32
    area_target: float = 0.05
    rise_masks: int = 4000
    lime_samples: int = 1000
    slow_speed_images: int = 1
    step: int = 128
    seed: int = 0

    @classmethod
    def quick(cls) -> DemoSettings:
        """A run of about two minutes, for a first look and for tests.

        Returns:
            The settings ``captum-akd demo --quick`` uses.

        Examples::

            >>> DemoSettings.quick().train_images
            2000
        """
        return cls(train_images=2000, test_images=300, eval_images=8, target_epochs=3,
                   student_epochs=2, explainer_epochs=2, rise_masks=500, lime_samples=200,
                   step=128)


def dataset_tensors(dataset, progress: bool = True, desc: str = "data") -> dict[str, Tensor]:
    """Collate a whole :class:`~captum_akd.data.FineGrainedShapes` into tensors.

    Args:
        dataset: a ``FineGrainedShapes`` (single objects).
        progress: show a progress bar.
        desc: the progress bar's label.

    Returns:
        ``{"image": N x 3 x S x S, "label": N, "mask": N x 1 x S x S}``.

    Examples::

        >>> data = dataset_tensors(FineGrainedShapes(16, image_size=32), progress=False)
        >>> data["image"].shape, data["mask"].shape
        (torch.Size([16, 3, 32, 32]), torch.Size([16, 1, 32, 32]))
    """
    loader = torch.utils.data.DataLoader(dataset, batch_size=256, shuffle=False)
    parts: dict[str, list[Tensor]] = {}
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
        for key in ("image", "label", "mask"):
            parts.setdefault(key, []).append(torch.as_tensor(batch[key]))
    return {key: torch.cat(values) for key, values in parts.items()}


def train_classifier(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    epochs: int,
    lr: float = 3e-3,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> nn.Module:
    """Train ``model`` with AdamW, a one-cycle schedule and random flips.

    Args:
        model: the classifier to train (in place).
        images: ``N x C x H x W`` training images.
        labels: ``N`` class indices.
        epochs: passes over the data.
        lr: peak learning rate.
        batch_size: images per step.
        seed: seeds the data order and flips.
        progress: show a progress bar.

    Returns:
        ``model`` in eval mode.

    Examples::

        >>> from captum_akd.demo import train_classifier
        >>> from captum_akd.zoo.small_cnn import SmallCNN
        >>> images, labels = torch.randn(32, 3, 16, 16), torch.randint(0, 4, (32,))
        >>> model = train_classifier(SmallCNN(num_classes=4, width=8), images, labels,
        ...                          epochs=2, batch_size=16, progress=False)
        >>> model.training
        False
    """
    generator = torch.Generator().manual_seed(seed)
    steps = epochs * ((images.shape[0] + batch_size - 1) // batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    model.train()
    bar = tqdm(total=steps, desc="target", disable=not progress, leave=False)
    for _ in range(epochs):
        order = torch.randperm(images.shape[0], generator=generator)
        for start in range(0, images.shape[0], batch_size):
            index = order[start : start + batch_size]
            x = images[index]
            flip = torch.rand(x.shape[0], generator=generator) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            loss = F.cross_entropy(model(x), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` in percent.

    Args:
        model: ``N x C x H x W -> N x K`` logits, in eval mode.
        images: ``N x C x H x W`` images.
        labels: ``N`` class indices (the truth, or another model's predictions
            for an agreement).
        batch_size: images per call.

    Returns:
        The share of images whose argmax equals the label, in percent.

    Examples::

        >>> accuracy(target, test["image"], test["label"])
        99.9
    """
    correct = 0
    for start in range(0, images.shape[0], batch_size):
        logits = model(images[start : start + batch_size])
        correct += int((logits.argmax(1) == labels[start : start + batch_size]).sum())
    return 100.0 * correct / images.shape[0]


def machine_description() -> dict[str, Any]:
    """Where a run happened: what the results need to be read against.

    Returns:
        Platform, processor, Python, torch and library versions, torch's CPU
        threads and the CUDA device's name (``None`` without one).

    Examples::

        >>> machine_description()["threads"]
        2
    """
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "captum_akd": __version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def build_methods(target: nn.Module, attr, settings: DemoSettings) -> dict[str, Any]:
    """The methods the demo compares, on one black box and one surrogate.

    Args:
        target: the black box (a :class:`~captum_akd.zoo.small_cnn.SmallCNN`;
            Grad-CAM uses its last conv block).
        attr: the distilled :class:`~captum_akd.AttentiveDistillationAttribution`.
        settings: RISE's masks and LIME's samples come from here.

    Returns:
        Method name -> attribution, AKD first.

    Examples::

        >>> methods = build_methods(target, attr, DemoSettings.quick())
        >>> list(methods)
        ['AKD (ours)', 'Layer-wise CAM', 'Grad-CAM', 'RISE', 'LIME']
    """
    from captum_akd.baselines import RISE, GradCAM, LayerwiseSurrogateCAM, LimeImage

    return {
        "AKD (ours)": attr,
        "Layer-wise CAM": LayerwiseSurrogateCAM(attr.student, forward_func=target),
        "Grad-CAM": GradCAM(target, target.features[-1]),
        "RISE": RISE(target, n_masks=settings.rise_masks, seed=settings.seed),
        "LIME": LimeImage(target, n_samples=settings.lime_samples, seed=settings.seed),
    }


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The demo's goals, each with the measured value and whether it holds.

    Args:
        results: the content of ``results.json`` (without ``"goals"``).

    Returns:
        One ``{"goal", "holds", "measured"}`` dict per goal.

    Examples::

        >>> [g["goal"] for g in check_targets(results) if not g["holds"]]
        ['AKD images/s >= 2 x Grad-CAM']
    """
    rows = results["methods"]
    akd = rows["AKD (ours)"]["summary"]
    others = {k: v["summary"] for k, v in rows.items() if k != "AKD (ours)"}
    speed = akd["images_per_second"]

    def goal(name: str, holds: bool, value: str) -> dict[str, Any]:
        return {"goal": name, "holds": bool(holds), "measured": value}

    return [
        goal("target test accuracy >= 95 %", results["target"]["test_accuracy"] >= 95,
             f"{results['target']['test_accuracy']:.1f} %"),
        goal("student top-1 agreement >= 95 %", results["student"]["agreement"] >= 95,
             f"{results['student']['agreement']:.1f} %"),
        goal("AKD pointing game >= 90 %", akd["pointing_game"] >= 90,
             f"{akd['pointing_game']:.1f} %"),
        goal("AKD energy pointing game >= every baseline",
             all(akd["energy_pointing_game"] >= o["energy_pointing_game"] for o in others.values()),
             f"{akd['energy_pointing_game']:.1f} % vs best baseline "
             f"{max(o['energy_pointing_game'] for o in others.values()):.1f} %"),
        goal("AKD insertion >= Grad-CAM", akd["insertion"] >= others["Grad-CAM"]["insertion"],
             f"{akd['insertion']:.4f} vs {others['Grad-CAM']['insertion']:.4f}"),
        goal("AKD deletion <= Grad-CAM", akd["deletion"] <= others["Grad-CAM"]["deletion"],
             f"{akd['deletion']:.4f} vs {others['Grad-CAM']['deletion']:.4f}"),
        goal("AKD images/s >= 2 x Grad-CAM",
             speed >= 2 * others["Grad-CAM"]["images_per_second"],
             f"{speed / others['Grad-CAM']['images_per_second']:.1f} x"),
        goal("AKD images/s >= 100 x RISE", speed >= 100 * others["RISE"]["images_per_second"],
             f"{speed / others['RISE']['images_per_second']:.0f} x"),
    ]


def class_following(methods: dict[str, Any], dataset, n: int, progress: bool) -> dict[str, float]:
    """Pointing game on two-object images, asking for each object's class in turn.

    A map that follows the requested class hits that class's part; a map that
    ignores ``target`` can at best hit one of the two.

    Args:
        methods: name -> attribution.
        dataset: a ``FineGrainedShapes`` with ``two_objects=True``.
        n: how many of its images to use.
        progress: show a progress bar.

    Returns:
        Method name -> hits in percent over the ``2 n`` requests.

    Examples::

        >>> pairs = FineGrainedShapes(16, two_objects=True)
        >>> class_following({"AKD": attr}, pairs, 16, progress=False)
        {'AKD': 87.5}
    """
    from captum_akd.metrics import pointing_game

    items = [dataset[i] for i in range(n)]
    images = torch.stack([torch.as_tensor(item["image"]) for item in items])
    labels = torch.stack([torch.as_tensor(item["labels"]) for item in items])  # n x 2
    masks = torch.stack([torch.as_tensor(item["masks"]) for item in items])  # n x 2 x H x W
    scores = {}
    for name, method in tqdm(methods.items(), desc="class following", disable=not progress,
                             leave=False):
        hits = []
        for k in range(2):
            maps = method.attribute(images, target=labels[:, k])
            hits.append(pointing_game(maps, masks[:, k : k + 1]).float())
        scores[name] = float(torch.cat(hits).mean()) * 100
    return scores


def run_demo(
    out: str | Path = "akd-demo",
    quick: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    settings: DemoSettings | None = None,
) -> dict[str, Any]:
    """Run the demo and write its report to ``out``.

    Args:
        out: output directory (written atomically at the end).
        quick: the short run (about two minutes on two cores).
        overwrite: replace an existing demo directory.
        progress: show progress bars.
        settings: explicit sizes, overriding ``quick``.

    Returns:
        The content of ``results.json``.

    Examples::

        >>> results = run_demo("akd-demo", quick=True)
        >>> results["student"]["agreement"], list(results["methods"])[0]
        (93.3, 'AKD (ours)')
    """
    from torch.utils.data import TensorDataset

    from captum_akd import distill
    from captum_akd.data import FineGrainedShapes
    from captum_akd.evaluation import compare_methods
    from captum_akd.models import ExplanationNet, cifar_resnet_student
    from captum_akd.report import comparison_to_dict, save_curves, save_maps_grid
    from captum_akd.zoo.small_cnn import SmallCNN

    settings = settings or (DemoSettings.quick() if quick else DemoSettings())
    # Refuse before ten minutes of work, not after.
    out = check_writable(out, overwrite, marker="results.json")
    started = time.perf_counter()
    wall: dict[str, float] = {}

    def say(line: str) -> None:
        if progress:
            tqdm.write(line)

    torch.manual_seed(settings.seed)
    common = {"num_classes": settings.num_classes, "image_size": settings.image_size}
    train = dataset_tensors(FineGrainedShapes(settings.train_images, seed=settings.seed, **common),
                            progress, "train data")
    test = dataset_tensors(
        FineGrainedShapes(settings.test_images, seed=settings.seed + 1, **common),
        progress, "test data")
    wall["data"] = time.perf_counter() - started

    lap = time.perf_counter()
    torch.manual_seed(settings.seed)
    target = SmallCNN(settings.num_classes, width=settings.target_width)
    train_classifier(target, train["image"], train["label"], settings.target_epochs,
                     seed=settings.seed, progress=progress)
    for p in target.parameters():
        p.requires_grad_(False)
    target_accuracy = accuracy(target, test["image"], test["label"])
    wall["target"] = time.perf_counter() - lap
    say(f"black box trained: {target_accuracy:.1f} % test accuracy ({wall['target']:.0f} s)")

    lap = time.perf_counter()
    student = cifar_resnet_student(depth=settings.student_depth, num_classes=settings.num_classes,
                                   stem_stride=settings.student_stem_stride)
    n_eval = settings.eval_images
    attr = distill(
        target,
        TensorDataset(train["image"], train["label"]),
        student=student,
        val_data=TensorDataset(test["image"][n_eval:], test["label"][n_eval:]),
        explainer=ExplanationNet.for_student(student, width=settings.explainer_width),
        epochs=settings.student_epochs,
        explainer_epochs=settings.explainer_epochs,
        explainer_config={"area_target": settings.area_target},
        seed=settings.seed,
        quiet=not progress,
    )
    wall["distill"] = time.perf_counter() - lap
    with torch.no_grad():
        target_pred = target(test["image"]).argmax(1)
    agreement = accuracy(attr.student, test["image"], target_pred)
    say(f"distilled: the student agrees with the black box on {agreement:.1f} % of test images "
        f"({wall['distill']:.0f} s)")

    lap = time.perf_counter()
    images, masks = test["image"][:n_eval], test["mask"][:n_eval]
    methods = build_methods(target, attr, settings)
    slow = settings.slow_speed_images
    comparison = compare_methods(
        target, methods, images, masks=masks, step=settings.step, batch_size=64,
        speed_images={"RISE": slow, "LIME": slow}, progress=progress,
    )
    fast = {k: methods[k] for k in ("AKD (ours)", "Layer-wise CAM", "Grad-CAM")}
    pairs = FineGrainedShapes(16 if quick else 64, seed=settings.seed + 2, two_objects=True,
                              **common)
    following = class_following(fast, pairs, len(pairs), progress)
    wall["explain_and_score"] = time.perf_counter() - lap
    wall["total"] = time.perf_counter() - started

    scored = comparison_to_dict(comparison)
    results: dict[str, Any] = {
        "command": "captum-akd demo" + (" --quick" if quick else ""),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine_description(),
        "settings": dataclasses.asdict(settings),
        "target": {"model": "SmallCNN", "test_accuracy": target_accuracy,
                   "test_images": settings.test_images},
        "student": {"builder": student.config, "agreement": agreement,
                    "fidelity": attr.metadata.get("fidelity")},
        "class_following_pointing_game": following,
        "wall_seconds": wall,
        "evaluation": scored.pop("settings"),
        **scored,
    }
    results["goals"] = check_targets(results)

    grid_titles = [f"class {int(c)}" for c in test["label"][:n_eval]]
    writers = {
        "results.json": lambda p: write_json(results, p),
        "maps.png": lambda p: save_maps_grid(p, images, comparison, masks, n=8,
                                             titles=grid_titles),
        "curves.png": lambda p: save_curves(p, comparison),
        "checkpoint": lambda p: attr.save(p),
        "report.md": lambda p: p.write_text(render_report(results, comparison),
                                            encoding="utf-8"),
    }
    write_directory_atomically(out, writers, overwrite=overwrite, marker="results.json")
    return results


def reading(results: dict[str, Any]) -> str:
    """A one-paragraph reading of the table, written from the measured numbers.

    Args:
        results: the content of ``results.json``.

    Returns:
        The paragraph the demo prints and puts in ``report.md``.

    Examples::

        >>> print(reading(json.load(open("akd-demo/results.json"))))
    """
    rows = {k: v["summary"] for k, v in results["methods"].items()}
    akd = rows.pop("AKD (ours)")
    best_ins = max(rows, key=lambda k: rows[k]["insertion"])
    best_del = min(rows, key=lambda k: rows[k]["deletion"])
    parts = [
        f"The black box reaches {results['target']['test_accuracy']:.1f} % test accuracy and "
        f"the attentive student agrees with it on {results['student']['agreement']:.1f} % of "
        "held-out images.",
        f"AKD's maps point at the class-deciding part in {akd['pointing_game']:.0f} % of images "
        f"(energy inside the part {akd['energy_pointing_game']:.1f} %, against "
        + ", ".join(f"{k} {v['energy_pointing_game']:.1f} %" for k, v in rows.items()) + ").",
        f"On the black box, AKD's insertion is {akd['insertion']:.3f} and deletion "
        f"{akd['deletion']:.3f}; the best baseline for insertion is {best_ins} "
        f"({rows[best_ins]['insertion']:.3f}) and for deletion {best_del} "
        f"({rows[best_del]['deletion']:.3f}).",
        f"AKD explains {akd['images_per_second']:.0f} images per second: "
        + ", ".join(f"{akd['images_per_second'] / v['images_per_second']:.3g} x {k}"
                    for k, v in rows.items()) + ".",
    ]
    missed = [g["goal"] for g in results["goals"] if not g["holds"]]
    parts.append("Every goal of the demo holds." if not missed else
                 "Goals missed in this run: " + "; ".join(missed) + ".")
    return " ".join(parts)


def render_report(results: dict[str, Any], comparison) -> str:
    """``report.md``: the tables, the goals, the figures and the reading.

    Args:
        results: the content of ``results.json``.
        comparison: the :class:`~captum_akd.evaluation.Comparison` it came from.

    Returns:
        The Markdown text.

    Examples::

        >>> Path("report.md").write_text(render_report(results, comparison))
    """
    from captum_akd.report import markdown_table

    s = results["settings"]
    wall = results["wall_seconds"]
    lines = [
        "# captum-akd demo",
        "",
        f"Command: `{results['command']}` on {results['date']}; machine: "
        f"{results['machine']['processor']}, {results['machine']['threads']} threads, "
        f"torch {results['machine']['torch']}, captum-akd {results['machine']['captum_akd']}.",
        "",
        f"Data: FineGrainedShapes, {s['num_classes']} classes, {s['image_size']} x "
        f"{s['image_size']} px, {s['train_images']} training and {s['test_images']} test "
        f"images. Black box: a plain CNN (SmallCNN) trained for {s['target_epochs']} epochs. "
        f"Student: attentive CIFAR-style ResNet-{s['student_depth']}.",
        "",
        "## Faithfulness and speed (all metrics computed on the black box)",
        "",
        markdown_table(comparison),
        "",
        f"{results['settings']['eval_images']} held-out images; insertion/deletion with "
        f"{results['settings']['step']} pixels per step; pointing-game tolerance "
        f"{comparison.settings['pointing_tolerance_px']:.1f}"
        f" px (15 px at 224). RISE: {s['rise_masks']} masks, 7 x 7 grid, p1 = 0.5; LIME: "
        f"{s['lime_samples']} samples. RISE and LIME are timed on {s['slow_speed_images']} "
        f"image{'' if s['slow_speed_images'] == 1 else 's'}, the others on all. "
        f"{GRADCAM_NOTE}",
        "",
        "## Do the maps follow the requested class?",
        "",
        "Two objects of different classes per image; each class is asked for in turn, and a "
        "hit means the map's maximum lies on that class's deciding part.",
        "",
        "| Method | Pointing % on the requested object |",
        "|---|---|",
        *[f"| {k} | {v:.1f} |" for k, v in results["class_following_pointing_game"].items()],
        "",
        "## Goals",
        "",
        "| Goal | Measured | Holds |",
        "|---|---|---|",
        *[f"| {g['goal']} | {g['measured']} | {'yes' if g['holds'] else 'no'} |"
          for g in results["goals"]],
        "",
        "## Reading",
        "",
        reading(results),
        "",
        "![maps](maps.png)",
        "",
        "![insertion and deletion curves](curves.png)",
        "",
        f"Wall time: data {wall['data']:.0f} s, target {wall['target']:.0f} s, distillation "
        f"{wall['distill']:.0f} s, explaining and scoring {wall['explain_and_score']:.0f} s, "
        f"total {wall['total']:.0f} s.",
        "",
    ]
    return "\n".join(lines)
