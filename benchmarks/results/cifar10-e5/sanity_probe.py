"""Why AKD's maps keep a 0.39 Spearman correlation with a randomised ResNet-56.

``python benchmarks/results/cifar10-e5/sanity_probe.py RANDOM_CHECKPOINT`` takes
the checkpoint the track's model-randomisation check distilled from the
randomised ResNet-56 (the cache entry ``cifar10-randomized-<key>`` that
``python -m benchmarks.run --track cifar10 ... --cache DIR`` writes; the
``cifar10-e5`` run's was ``cifar10-randomized-e35a635b4469``) and, on the track's first
200 evaluation images (the check's), explaining the trained network's
predicted class, prints as JSON:

- the mean Spearman correlation between every pair of maps: AKD on the
  trained network (that run's ``rise`` explainer and the ``curve`` one it
  replaced), AKD re-distilled from the random network, an untrained
  explanation network (seed 0) on either student, Grad-CAM on both
  networks, and two controls (Sobel edges, centre Gaussian);
- how much each student's probability of that class moves under 64 RISE
  masks (standard deviation across masks, mean over images): the signal the
  ``rise`` objective correlates its map with;
- how many classes the random network's student predicts on the images.
"""

import argparse
import json
from pathlib import Path

import torch

from benchmarks.cifar10 import evaluation_set
from captum_akd import AttentiveDistillationAttribution
from captum_akd._image_ops import rise_masks
from captum_akd.baselines import GradCAM
from captum_akd.metrics import CentreGaussianControl, SobelEdgeControl, randomize_model
from captum_akd.metrics.sanity import spearman_correlation
from captum_akd.models import ExplanationNet
from captum_akd.zoo.cifar_resnet import cifar_resnet56, normalize_cifar

REPO = Path(__file__).resolve().parents[3]


def main(random_checkpoint: Path, data: Path, n: int = 200) -> dict:
    torch.set_num_threads(2)
    target = cifar_resnet56(data / "weights" / "cifar10_resnet56.safetensors").eval()
    evaluation, order = evaluation_set(data / "cifar10" / "cifar10-test.zip", 1000, 0)
    x = normalize_cifar(evaluation.data[order][:n].float() / 255)
    with torch.no_grad():
        y = target(x).argmax(1)
    random_target = randomize_model(target, seed=0).eval()
    checkpoints = REPO / "benchmarks" / "checkpoints"
    trained = AttentiveDistillationAttribution.load(checkpoints / "cifar10-e5", forward_func=target)
    curve = AttentiveDistillationAttribution.load(checkpoints / "cifar10-curve",
                                                  forward_func=target)
    rand = AttentiveDistillationAttribution.load(random_checkpoint, forward_func=random_target)
    untrained = {}
    for name, student, model in (("random", rand.student, random_target),
                                 ("trained", trained.student, target)):
        torch.manual_seed(0)
        untrained[name] = AttentiveDistillationAttribution(
            model, student, ExplanationNet.for_student(student))
    methods = {
        "AKD rise (trained net)": trained, "AKD curve (trained net)": curve,
        "AKD rise (random net)": rand,
        "untrained decoder on the random student": untrained["random"],
        "untrained decoder on the trained student": untrained["trained"],
        "Grad-CAM (trained net)": GradCAM(target, target.layer3),
        "Grad-CAM (random net)": GradCAM(random_target, random_target.layer3),
        "Sobel edges": SobelEdgeControl(target), "centre Gaussian": CentreGaussianControl(target),
    }
    maps = {name: torch.cat([m.attribute(x[i:i + 50], target=y[i:i + 50]).detach()
                             for i in range(0, n, 50)]) for name, m in methods.items()}
    masks = rise_masks(64, 32, 32, 7, 0.5, torch.Generator().manual_seed(0))
    spread = {}
    with torch.no_grad():
        for name, student in (("trained student", trained.student),
                              ("random student", rand.student)):
            stds = []
            for i in range(0, n, 25):
                xi, yi = x[i:i + 25], y[i:i + 25]
                p = student((xi[:, None] * masks[None]).flatten(0, 1)).softmax(1)
                p = p.view(xi.shape[0], masks.shape[0], -1)[torch.arange(xi.shape[0]), :, yi]
                stds.append(p.std(1))
            spread[name] = round(float(torch.cat(stds).mean()), 4)
        random_classes = int(rand.student(x).argmax(1).unique().numel())
    names = list(maps)
    pairs = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            c = spearman_correlation(maps[a], maps[b])
            pairs[f"{a} ~ {b}"] = round(float(c[c.isfinite()].mean()), 3)
    return {"images": n, "spearman_mean": pairs,
            "std_of_class_probability_over_64_rise_masks": spread,
            "random_student_distinct_predictions": random_classes}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("random_checkpoint", type=Path)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    print(json.dumps(main(args.random_checkpoint, args.data_dir), indent=1))
