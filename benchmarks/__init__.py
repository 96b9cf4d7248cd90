"""The benchmark harness: every saliency method on the same images of a track.

``python -m benchmarks.run --track {synthetic,cifar10,imagenet-sample}`` loads
the track's black-box target and data, distils (or loads a cached checkpoint
of) the attentive surrogate, explains the same held-out images with AKD,
layer-wise surrogate CAM, Grad-CAM, RISE and LIME, scores every map on the
black box (design section 5) and writes ``results.json``, ``results.md``, a
grid of maps and the mean insertion/deletion curves to ``--out``.

Modules:

- :mod:`benchmarks.run`: the command line and the common pipeline;
- :mod:`benchmarks.common`: methods, caching of distilled checkpoints,
  slices, the issue's targets and the report;
- :mod:`benchmarks.synthetic`, :mod:`benchmarks.cifar10`,
  :mod:`benchmarks.imagenet_sample`: one module per track.
"""
