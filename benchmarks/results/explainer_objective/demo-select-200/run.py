"""The two demo runs of this folder: `python run.py plain` and `python run.py select-200`."""

import sys
import time

import torch

from captum_akd.demo import DemoSettings, run_demo

torch.set_num_threads(2)
options = {**DemoSettings().explainer_options, "select_on": "black_box", "select_images": 200}
settings = DemoSettings() if sys.argv[1] == "plain" else DemoSettings(explainer_options=options)
started = time.time()
run_demo(sys.argv[1], overwrite=True, progress=False, settings=settings)
print("wall", time.time() - started)
