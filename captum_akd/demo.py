"""``captum-akd demo``: the whole pipeline end to end on built-in data.

1. Train a plain CNN on :class:`~captum_akd.data.FineGrainedShapes`; it plays
   the user's black box.
2. Distil it with :func:`captum_akd.distill` (student, then explainer).
3. Explain held-out images with AKD, layer-wise surrogate CAM, Grad-CAM on the
   target, RISE, LIME, RISE on the student (the surrogate ceiling) and the
   three controls, and score every map on the black box: insertion, both
   deletions, ROAD, the confidence and pointing metrics, speed; every figure
   with its 95 % bootstrap interval, every method paired with AKD image by
   image. The black box is wrapped in a
   :class:`~captum_akd.blackbox.CountingBlackBox`, so the images each step
   passes through it (the distillation once, every method per explained
   image) are reported with the break-even point.
4. Write ``report.md``, ``results.json``, a grid of maps, the insertion and
   deletion curves and the checkpoint to the output directory.

Nothing is downloaded and no user data is needed; the full run fits in about
ten minutes on two CPU cores, ``--quick`` in about two.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from captum_akd._version import __version__
from captum_akd.checkpoint import check_writable, write_directory_atomically, write_json
from captum_akd.evaluation import (
    AKD_LABEL,
    CLAIM_METRICS,
    FAITHFULNESS,
    GOALS_RULE,
    GRADCAM_NOTE,
    RISE_LABEL,
    RISE_STUDENT_LABEL,
    RISE_STUDENT_NOTE,
    Comparison,
    baseline_goals,
    build_methods,
    combined_goal,
    compare_methods,
    control_goals,
    paired_goal,
)

if TYPE_CHECKING:
    from captum_akd.attribution import AttentiveDistillationAttribution


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
        amp: bfloat16 autocast of the student in both stages
            (:class:`~captum_akd.distill.RunConfig`'s ``amp``; ``None``: on
            with CUDA only).
        area_target: share of the image the explainer's masks keep while
            training (the deciding parts cover 2-6 % of an image).
        student_options: other stage-1 settings
            (:class:`~captum_akd.distill.DistillConfig` fields, e.g.
            ``{"perturb_share": 0.2}``); none by default.
        explainer_options: the other stage-2 settings
            (:class:`~captum_akd.distill.ExplainerConfig` fields): the
            whole-curve objective, destroying over blur and zeros, a light
            area term and a stronger smoothness term, the best of the variants
            measured on this demo (``benchmarks/results/explainer_objective/``).
        rise_masks: RISE's number of masks (4000 in the method paper).
        lime_samples: LIME's number of perturbed samples.
        slow_speed_images: images RISE and LIME are timed on.
        slow_images: evaluation images RISE and LIME explain and are scored
            on (the first ones; ``None``: all), so that the cheap methods can
            be scored on more images than the perturbation methods afford.
        step: pixels per insertion/deletion step.
        road_images: evaluation images ROAD runs on (the first ones;
            ``None``: all).
        ceiling_images: evaluation images RISE on the student explains (the
            first ones; ``None``: all): it costs as much as RISE itself.
        bootstrap_resamples: resamples of every interval.
        seed: seed of everything.

    Examples::

        >>> import dataclasses
        >>> longer = dataclasses.replace(DemoSettings(), explainer_epochs=8)
        >>> longer.explainer_epochs, longer.train_images, DemoSettings.quick().train_images
        (8, 8000, 2000)
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
    amp: bool | None = None
    area_target: float = 0.05
    student_options: dict[str, Any] = field(default_factory=dict)
    explainer_options: dict[str, Any] = field(default_factory=lambda: {
        "objective": "curve", "destroy_substrate": "both", "area_weight": 0.5,
        "tv_weight": 0.3})
    rise_masks: int = 4000
    lime_samples: int = 1000
    slow_speed_images: int = 1
    slow_images: int | None = None
    step: int = 128
    road_images: int | None = None
    ceiling_images: int | None = 8
    bootstrap_resamples: int = 10_000
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
                   step=128, ceiling_images=None)


def dataset_tensors(dataset, progress: bool = True, desc: str = "data") -> dict[str, Tensor]:
    """Collate a whole :class:`~captum_akd.data.FineGrainedShapes` into tensors.

    Args:
        dataset: a ``FineGrainedShapes`` (single objects).
        progress: show a progress bar.
        desc: the progress bar's label.

    Returns:
        ``{"image": N x 3 x S x S, "label": N, "mask": N x 1 x S x S}``.

    Examples::

        >>> from captum_akd.data import FineGrainedShapes
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


def demo_data(settings: DemoSettings, progress: bool = True
              ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The demo's training and test images, generated as :func:`run_demo` generates them.

    Args:
        settings: the run's sizes and seed.
        progress: show progress bars.

    Returns:
        ``(train, test)``, each as :func:`dataset_tensors` returns it.

    Examples::

        >>> tiny = DemoSettings(image_size=32, train_images=8, test_images=4)
        >>> train, test = demo_data(tiny, progress=False)
        >>> train["image"].shape, test["label"].shape
        (torch.Size([8, 3, 32, 32]), torch.Size([4]))
    """
    from captum_akd.data import FineGrainedShapes

    torch.manual_seed(settings.seed)
    common = {"num_classes": settings.num_classes, "image_size": settings.image_size}
    train = dataset_tensors(FineGrainedShapes(settings.train_images, seed=settings.seed, **common),
                            progress, "train data")
    test = dataset_tensors(
        FineGrainedShapes(settings.test_images, seed=settings.seed + 1, **common),
        progress, "test data")
    return train, test


def demo_target(settings: DemoSettings, train: dict[str, Tensor], progress: bool = True
                ) -> nn.Module:
    """The demo's black box, trained as :func:`run_demo` trains it (the same weights).

    Args:
        settings: the run's sizes and seed.
        train: the training tensors of :func:`demo_data`.
        progress: show a progress bar.

    Returns:
        The trained :class:`~captum_akd.zoo.small_cnn.SmallCNN`, in eval mode,
        with no gradients to its weights.

    Examples::

        >>> tiny = DemoSettings(image_size=32, train_images=8, test_images=4, target_epochs=1)
        >>> train, test = demo_data(tiny, progress=False)
        >>> target = demo_target(tiny, train, progress=False)
        >>> target(test["image"]).shape
        torch.Size([4, 8])
    """
    from captum_akd.zoo.small_cnn import SmallCNN

    torch.manual_seed(settings.seed)
    target = SmallCNN(settings.num_classes, width=settings.target_width)
    train_classifier(target, train["image"], train["label"], settings.target_epochs,
                     seed=settings.seed, progress=progress)
    return target.requires_grad_(False)


def demo_distill(settings: DemoSettings, black_box: Callable[[Tensor], Tensor],
                 train: dict[str, Tensor], test: dict[str, Tensor], progress: bool = True,
                 out: str | Path | None = None, resume: bool = False
                 ) -> AttentiveDistillationAttribution:
    """Both stages of the demo's distillation, as :func:`run_demo` runs them.

    The student (attentive CIFAR-style ResNet), the explanation network and
    every stage setting come from ``settings``; the test images after the
    first ``settings.eval_images`` (those are explained) give the held-out
    fidelity reports and choose the best epochs.

    Args:
        settings: the run's sizes, seed and stage-2 options.
        black_box: the model to explain (``N x 3 x H x W`` images in, logits
            out), e.g. :func:`demo_target` wrapped in a
            :class:`~captum_akd.blackbox.CountingBlackBox`.
        train: the training tensors of :func:`demo_data`.
        test: its test tensors.
        progress: show progress bars.
        out: a run directory to checkpoint into (``None``: none), as
            :func:`~captum_akd.distill.distill`'s ``out``.
        resume: continue the run checkpointed in ``out``.

    Returns:
        The distilled :class:`~captum_akd.AttentiveDistillationAttribution`.

    Examples::

        >>> tiny = DemoSettings(image_size=32, train_images=16, test_images=8, eval_images=2,
        ...                     target_epochs=1, student_epochs=1, explainer_epochs=1)
        >>> train, test = demo_data(tiny, progress=False)
        >>> attr = demo_distill(tiny, demo_target(tiny, train, progress=False), train, test,
        ...                     progress=False)
        >>> attr.attribute(test["image"][:2], target=0).shape
        torch.Size([2, 1, 32, 32])
    """
    from torch.utils.data import TensorDataset

    from captum_akd import distill
    from captum_akd.models import ExplanationNet, cifar_resnet_student

    torch.manual_seed(settings.seed)
    student = cifar_resnet_student(depth=settings.student_depth, num_classes=settings.num_classes,
                                   stem_stride=settings.student_stem_stride)
    n_eval = settings.eval_images
    return distill(
        black_box,
        TensorDataset(train["image"], train["label"]),
        student=student,
        val_data=TensorDataset(test["image"][n_eval:], test["label"][n_eval:]),
        explainer=ExplanationNet.for_student(student, width=settings.explainer_width),
        epochs=settings.student_epochs,
        explainer_epochs=settings.explainer_epochs,
        student_config=dict(settings.student_options),
        explainer_config={"area_target": settings.area_target, **settings.explainer_options},
        seed=settings.seed,
        amp=settings.amp,
        quiet=not progress,
        out=out,
        resume=resume,
    )


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

        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)).eval()
        >>> images = torch.randn(10, 3, 2, 2)
        >>> accuracy(model, images, model(images).argmax(1))  # a model agrees with itself
        100.0
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

        >>> sorted(machine_description())
        ['captum_akd', 'cuda', 'platform', 'processor', 'python', 'threads', 'torch']
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


#: The methods the demo's goals call baselines (not the ceiling row, not the controls).
BASELINES = ("Layer-wise CAM", "Grad-CAM", RISE_LABEL, "LIME")


def _check_targets(results: dict[str, Any], comparison: Comparison) -> list[dict[str, Any]]:
    """The demo's goals under the interval rule (:data:`GOALS_RULE`), for report and reading."""
    stats = {"n_resamples": results["settings"]["bootstrap_resamples"],
             "seed": results["settings"]["seed"]}
    scores = {r.name: r.per_image() for r in comparison.methods}
    akd = scores[AKD_LABEL]
    speeds = {k: v["summary"]["images_per_second"] for k, v in results["methods"].items()}
    speed = speeds[AKD_LABEL]

    def direct(name: str, holds: bool, value: str) -> dict[str, Any]:
        return {"goal": name, "holds": bool(holds), "measured": value, "verdict": None,
                "rule": "one measurement"}

    energy = combined_goal("AKD energy pointing game >= every baseline", {
        other: paired_goal("", akd["energy_pointing_game"], scores[other]["energy_pointing_game"],
                           True, digits=1, **stats)
        for other in BASELINES if other in scores})
    return [
        direct("target test accuracy >= 95 %", results["target"]["test_accuracy"] >= 95,
               f"{results['target']['test_accuracy']:.1f} %"),
        direct("student top-1 agreement >= 95 %", results["student"]["agreement"] >= 95,
               f"{results['student']['agreement']:.1f} %"),
        paired_goal("AKD pointing game >= 90 %", akd["pointing_game"], 90.0, True, digits=1,
                    **stats),
        energy,
        *baseline_goals(comparison, "Grad-CAM", AKD_LABEL, **stats),
        *control_goals(comparison, AKD_LABEL, CLAIM_METRICS, **stats),
        direct("AKD images/s >= 2 x Grad-CAM", speed >= 2 * speeds["Grad-CAM"],
               f"{speed / speeds['Grad-CAM']:.1f} x"),
        direct("AKD images/s >= 100 x RISE", speed >= 100 * speeds[RISE_LABEL],
               f"{speed / speeds[RISE_LABEL]:.0f} x"),
    ]


def _class_following(methods: dict[str, Any], dataset, n: int,
                     progress: bool) -> dict[str, float]:
    """Pointing % on two-object images, asking for each object's class: do maps follow it?"""
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

        >>> tiny = DemoSettings(image_size=32, train_images=64, test_images=40, eval_images=2,
        ...                     target_epochs=1, student_epochs=1, explainer_epochs=1,
        ...                     rise_masks=20, lime_samples=10, step=256,
        ...                     bootstrap_resamples=200)
        >>> results = run_demo("akd-demo", settings=tiny, progress=False)
        >>> list(results["methods"])
        ['AKD (ours)', 'Layer-wise CAM', 'Grad-CAM', 'RISE', 'LIME', 'RISE on student',
         'Uniform noise (control)', 'Centre Gaussian (control)', 'Sobel edges (control)']
        >>> counted = results["black_box_queries"]["methods"]
        >>> counted["RISE"]["images_per_image"], counted["AKD (ours)"]["images"]
        (20.0, 0)
        >>> sorted(path.name for path in Path("akd-demo").iterdir())
        ['checkpoint', 'curves.png', 'maps.png', 'report.md', 'results.json']
    """

    from captum_akd.blackbox import CountingBlackBox
    from captum_akd.data import FineGrainedShapes
    from captum_akd.evaluation import (
        bootstrap_cells,
        paired_differences,
        query_accounting,
        surrogate_ceiling,
    )
    from captum_akd.report import comparison_to_dict, save_curves, save_maps_grid

    settings = settings or (DemoSettings.quick() if quick else DemoSettings())
    # Refuse before ten minutes of work, not after.
    out = check_writable(out, overwrite, marker="results.json")
    started = time.perf_counter()
    wall: dict[str, float] = {}

    def say(line: str) -> None:
        if progress:
            tqdm.write(line)

    common = {"num_classes": settings.num_classes, "image_size": settings.image_size}
    train, test = demo_data(settings, progress)
    wall["data"] = time.perf_counter() - started

    lap = time.perf_counter()
    target = demo_target(settings, train, progress)
    target_accuracy = accuracy(target, test["image"], test["label"])
    wall["target"] = time.perf_counter() - lap
    say(f"black box trained: {target_accuracy:.1f} % test accuracy ({wall['target']:.0f} s)")

    lap = time.perf_counter()
    n_eval = settings.eval_images
    # Every image the black box sees from here on is counted: the user's bill.
    black_box = CountingBlackBox(target)
    attr = demo_distill(settings, black_box, train, test, progress=progress)
    student = attr.student
    wall["distill"] = time.perf_counter() - lap
    distillation_queries = {
        "images": black_box.images, "calls": black_box.calls,
        "covers": "both stages of the distillation, fidelity reports included"}
    # In the checkpoint too, so that whoever re-scores it knows what it cost.
    attr.metadata["black_box_queries"] = distillation_queries
    black_box.reset()
    with torch.no_grad():
        target_pred = target(test["image"]).argmax(1)
    agreement = accuracy(attr.student, test["image"], target_pred)
    say(f"distilled: the student agrees with the black box on {agreement:.1f} % of test images "
        f"({wall['distill']:.0f} s)")

    lap = time.perf_counter()
    images, masks = test["image"][:n_eval], test["mask"][:n_eval]
    methods = build_methods(black_box, attr, target.features[-1],
                            rise_masks=settings.rise_masks, lime_samples=settings.lime_samples,
                            seed=settings.seed)
    slow = settings.slow_speed_images
    few = {} if settings.slow_images is None else {
        RISE_LABEL: settings.slow_images, "LIME": settings.slow_images,
        RISE_STUDENT_LABEL: settings.slow_images}
    if settings.ceiling_images is not None:
        few[RISE_STUDENT_LABEL] = min(few.get(RISE_STUDENT_LABEL, n_eval),
                                      settings.ceiling_images)
    comparison = compare_methods(
        target, methods, images, masks=masks, step=settings.step, batch_size=64,
        # RISE on the student is a diagnostic: its cost is RISE's, so it is not timed.
        speed_images={RISE_LABEL: slow, "LIME": slow, RISE_STUDENT_LABEL: 0},
        method_images=few, road_images=settings.road_images,
        road_threads=torch.get_num_threads(), counter=black_box, progress=progress,
    )
    fast = {k: methods[k] for k in (AKD_LABEL, "Layer-wise CAM", "Grad-CAM")}
    pairs = FineGrainedShapes(16 if quick else 64, seed=settings.seed + 2, two_objects=True,
                              **common)
    following = _class_following(fast, pairs, len(pairs), progress)
    stats = {"n_resamples": settings.bootstrap_resamples, "seed": settings.seed}
    cells = bootstrap_cells(comparison, **stats)
    paired = paired_differences(comparison, AKD_LABEL, **stats)
    scored = comparison_to_dict(comparison, cells=cells, paired=paired, **stats)
    wall["explain_and_score"] = time.perf_counter() - lap
    wall["total"] = time.perf_counter() - started

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
        "surrogate_ceiling": surrogate_ceiling(comparison, **stats),
        "black_box_queries": query_accounting(comparison, distillation_queries),
    }
    results["goals"] = _check_targets(results, comparison)

    grid_titles = [f"class {int(c)}" for c in test["label"][:n_eval]]
    writers = {
        "results.json": lambda p: write_json(results, p),
        "maps.png": lambda p: save_maps_grid(p, images, comparison, masks, n=8,
                                             titles=grid_titles),
        "curves.png": lambda p: save_curves(p, comparison),
        "checkpoint": lambda p: attr.save(p),
        "report.md": lambda p: p.write_text(_render_report(results, comparison, cells, paired),
                                            encoding="utf-8"),
    }
    write_directory_atomically(out, writers, overwrite=overwrite, marker="results.json")
    return results


#: How the reading names the metrics it pairs with AKD.
_READ_METRICS = {"insertion": "insertion", "deletion": "deletion to 0",
                 "deletion_blur": "deletion to blur", "road_combined": "ROAD combined"}


def reading(results: dict[str, Any]) -> str:
    """A one-paragraph reading of the tables, written from the measured numbers.

    Every comparison it states follows the interval rule: "better", "tie" or
    "worse" are the paired verdicts of ``results.json``, never a comparison
    of two means.

    Args:
        results: the content of ``results.json``.

    Returns:
        The paragraph the demo prints and puts in ``report.md``.

    Examples::

        >>> row = {"insertion": 0.9, "deletion": 0.1, "deletion_blur": 0.2,
        ...        "pointing_game": 100.0, "energy_pointing_game": 20.0,
        ...        "images_per_second": 100.0}
        >>> tie = {"difference": 0.0, "low": -0.1, "high": 0.1, "verdict": "tie"}
        >>> results = {"target": {"test_accuracy": 99.0}, "student": {"agreement": 97.5},
        ...            "evaluation": {"n_images": 24},
        ...            "methods": {"AKD (ours)": {"summary": row, "control": False, "paired": {}},
        ...                        "RISE": {"summary": dict(row, images_per_second=0.5),
        ...                                 "control": False,
        ...                                 "paired": {"insertion": tie, "deletion": tie}}},
        ...            "black_box_queries": {"one_off": {"images": 50000},
        ...                                  "methods": {"RISE": {"images_per_image": 4000.0}},
        ...                                  "break_even": {"RISE": 13}},
        ...            "goals": [{"goal": "AKD pointing game >= 90 %", "holds": True}]}
        >>> print(reading(results))
        The black box reaches 99.0 % test accuracy and the attentive student agrees with it on
        97.5 % of held-out images. AKD's maps point at the class-deciding part in 100 % of
        images (energy inside the part 20.0 %, against RISE 20.0 %). On the black box (24
        images), AKD's insertion is 0.900, deletion to 0 0.100 and deletion to blur 0.200.
        Paired with AKD image by image (95 % intervals; each method's verdict against AKD):
        insertion: RISE tie; deletion to 0: RISE tie. AKD explains 100 images per second:
        200 x RISE. Its distillation passed 50000 images through the black box, once; RISE
        passes 4000 per explained image, so AKD has used fewer black-box images than RISE
        from 13 explained images on. Every goal of the demo holds.
    """
    methods = results["methods"]
    akd = methods[AKD_LABEL]["summary"]
    rows = {k: v for k, v in methods.items() if k != AKD_LABEL and not v.get("control")}
    summaries = {k: v["summary"] for k, v in rows.items()}
    found = [k for k in _READ_METRICS if akd.get(k) is not None]
    parts = [
        f"The black box reaches {results['target']['test_accuracy']:.1f} % test accuracy and "
        f"the attentive student agrees with it on {results['student']['agreement']:.1f} % of "
        "held-out images.",
        f"AKD's maps point at the class-deciding part in {akd['pointing_game']:.0f} % of images "
        f"(energy inside the part {akd['energy_pointing_game']:.1f} %, against "
        + ", ".join(f"{k} {v['energy_pointing_game']:.1f} %" for k, v in summaries.items())
        + ").",
        f"On the black box ({results['evaluation']['n_images']} images), AKD's "
        + _and([f"{_READ_METRICS[k]} is {akd[k]:.3f}" if i == 0 else
                f"{_READ_METRICS[k]} {akd[k]:.3f}" for i, k in enumerate(found)]) + ".",
    ]
    verdicts = []
    for key in found:
        named = [f"{name} {row['paired'][key]['verdict']}" for name, row in rows.items()
                 if key in row.get("paired", {})]
        if named:
            verdicts.append(f"{_READ_METRICS[key]}: " + ", ".join(named))
    if verdicts:
        parts.append("Paired with AKD image by image (95 % intervals; each method's verdict "
                     "against AKD): " + "; ".join(verdicts) + ".")
    controls = [g for g in results["goals"] if g["goal"].startswith("AKD beats every control")]
    if controls:
        beaten = [g["goal"].rsplit(" on ", 1)[1] for g in controls if g["holds"]]
        missed = [g["goal"].rsplit(" on ", 1)[1] for g in controls if not g["holds"]]
        parts.append("AKD beats all three controls on "
                     + (_and(beaten) if beaten else "none of the metrics")
                     + ("" if not missed else f", not on {_and(missed)}") + ".")
    timed = {k: v["images_per_second"] for k, v in summaries.items() if v["images_per_second"]}
    parts.append(f"AKD explains {akd['images_per_second']:.0f} images per second: "
                 + ", ".join(f"{akd['images_per_second'] / v:.3g} x {k}"
                             for k, v in timed.items()) + ".")
    ceiling = results.get("surrogate_ceiling")
    if ceiling and ceiling["metrics"]:
        parts.append(_ceiling_sentence(ceiling))
    queries = results.get("black_box_queries")
    if queries and (queries.get("one_off") or {}).get("images") is not None:
        points = queries["break_even"]
        parts.append(
            f"Its distillation passed {queries['one_off']['images']} images through the black "
            "box, once; " + _and([f"{name} passes "
                                  f"{queries['methods'][name]['images_per_image']:.4g}"
                                  for name in points]) + " per explained image, so AKD has used "
            "fewer black-box images than " + _and([
                f"{name} from {n} explained images on" if n is not None else f"{name} never"
                for name, n in points.items()]) + ".")
    missed = [g["goal"] for g in results["goals"] if not g["holds"]]
    parts.append("Every goal of the demo holds." if not missed else
                 "Goals missed in this run: " + "; ".join(missed) + ".")
    return " ".join(parts)


def _and(items: list[str]) -> str:
    """English enumeration ("a, b and c"), for sentences built from measured lists."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _ceiling_sentence(ceiling: dict[str, Any]) -> str:
    """The surrogate ceiling in words: the transfer loss and AKD's own gap, with verdicts."""
    said = []
    for key, row in ceiling["metrics"].items():
        loss, gap = row["transfer_loss"], row["explainer_gap"]
        said.append(f"on {_READ_METRICS[key]}, RISE scores {row['rise_black_box']:.3f} on the "
                    f"black box and {row['rise_student']:.3f} on the student (transfer loss "
                    f"{loss['difference']:+.3f}, {_real(loss['verdict'], 'RISE')}), AKD "
                    f"{row['akd']:.3f} (its own gap {gap['difference']:+.3f}, "
                    f"{_real(gap['verdict'], 'AKD')})")
    return (f"Surrogate ceiling ({ceiling['images']} images): " + "; ".join(said) + ".")


def _real(verdict: str, second: str) -> str:
    """A ceiling gap's verdict as the reading says it (``second``: who is ahead if reversed)."""
    ahead = "RISE on the student ahead" if second == "RISE" else "AKD ahead of the ceiling"
    return {"better": "real", "tie": "within noise", "worse": ahead}[verdict]


def _render_report(results: dict[str, Any], comparison: Comparison, cells: Any,
                   paired: Any) -> str:
    """``report.md``: the tables, the goals, the figures and the reading, from ``results``."""
    from captum_akd import report as tables

    s = results["settings"]
    wall = results["wall_seconds"]
    n_road = max(comparison.settings["road_images"].values(), default=0)
    ceiling = results["surrogate_ceiling"]
    queries = results["black_box_queries"]
    intervals = f"Intervals: {s['bootstrap_resamples']} resamples, seed {s['seed']}."
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
        f"Student: attentive CIFAR-style ResNet-{s['student_depth']}. Explainer: "
        f"{s['explainer_epochs']} epochs of stage 2, "
        + ", ".join(f"{k}={v}" for k, v in s["explainer_options"].items()) + ".",
        "",
        "## Faithfulness (all metrics computed on the black box)",
        "",
        tables.markdown_table(comparison, FAITHFULNESS + ("pointing_game",
                                                          "energy_pointing_game"),
                              speed=False, cells=cells),
        "",
        f"Each cell: the mean over the held-out images of its row ({s['eval_images']} unless "
        "the Images column says fewer) and its 95 % bootstrap interval "
        f"({s['bootstrap_resamples']} resamples, seed {s['seed']}). "
        f"Insertion and both deletions with {s['step']} pixels per step; deletion to 0 is the "
        "paper's, deletion to blur removes pixels to insertion's blurred start image. ROAD: "
        f"noisy linear imputation at 10-90 % of the pixels on {n_road} images, MoRF (most "
        "relevant first, lower is better), LeRF (least relevant first, higher is better) and "
        "combined = LeRF - MoRF. Pointing-game tolerance "
        f"{comparison.settings['pointing_tolerance_px']:.1f} px (15 px at 224). Rows marked "
        "(control) are model-free maps: a method is useful only where it beats all three. "
        f"{RISE_STUDENT_NOTE}",
        "",
        "## Each method against AKD, image by image",
        "",
        tables.paired_table(comparison, AKD_LABEL, paired=paired),
        "",
        f"{tables.PAIRED_RULE} {intervals}",
        "",
        "## Other metrics and speed",
        "",
        tables.markdown_table(comparison, ("mean_pixel_intensity", "average_drop",
                                           "increase_in_confidence"), cells=cells),
        "",
        f"RISE: {s['rise_masks']} masks, 7 x 7 grid, p1 = 0.5; LIME: {s['lime_samples']} "
        f"samples. RISE and LIME are timed on {s['slow_speed_images']} "
        f"image{'' if s['slow_speed_images'] == 1 else 's'}, the others on all; RISE on "
        f"student (a diagnostic that costs what RISE does) and the controls' speed are not "
        f"the point. {GRADCAM_NOTE}",
        "",
        "## Surrogate ceiling",
        "",
        tables.ceiling_table(ceiling) or "RISE on student did not run.",
        "",
        tables.ceiling_caption(ceiling, s["bootstrap_resamples"]),
        "",
        "## Black-box queries",
        "",
        tables.queries_table(queries),
        "",
        tables.queries_caption(queries),
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
        tables.goals_table(results["goals"]),
        "",
        f"{GOALS_RULE} {intervals}",
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
