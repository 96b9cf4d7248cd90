"""The benchmark harness: every saliency method on the same images of a track.

``python -m benchmarks.run --track {synthetic,cifar10,imagenet-sample}`` loads
the track's black-box target and data, distils (or loads a cached or a
``--checkpoint``) attentive surrogate, explains the same held-out images with
AKD, layer-wise surrogate CAM, Grad-CAM, RISE, LIME, RISE on the student and
the three controls, scores every map on the black box under the protocol of
design section 5 (both deletions, ROAD, per-image scores with bootstrap
intervals, paired comparisons with AKD, the surrogate ceiling, black-box
queries) and writes ``results.json``, ``results.md``, a grid of maps, the
mean curves and the checkpoint to ``--out``.

Modules:

- :mod:`benchmarks.run`: the command line and the common pipeline;
- :mod:`benchmarks.common`: the track contract, caching of distilled
  checkpoints, slices, the issue's targets and the report (the methods are
  :func:`captum_akd.evaluation.build_methods`, as in the demo);
- :mod:`benchmarks.synthetic`, :mod:`benchmarks.cifar10`,
  :mod:`benchmarks.imagenet_sample`: one module per track;
- ``distill_cifar10.py`` (trains the cifar10 track's student) and
  ``throughput_cifar10.py`` (speed of every method on the ResNet-56): scripts.

Only the public API of ``captum_akd`` is used here.
"""
