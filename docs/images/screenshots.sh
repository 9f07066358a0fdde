#!/usr/bin/env bash
# How docs/images/tensorboard.png and mlflow.png were made (needs latentexp[tensorboard,mlflow] and
# Debian's chromium). Run from an empty folder.
set -euo pipefail
latentexp train -m loss=magnet,latent_boost lambda=0.5 'logger=[tensorboard,mlflow]' seed=0,1 \
  dataset.limit_train=3000 trainer.max_epochs=6 device=cpu
tensorboard --logdir outputs/runs --port 6006 & tb=$!
mlflow ui --backend-store-uri "sqlite:///$PWD/outputs/mlflow.db" --port 5000 & ml=$!
sleep 20
shot() { chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$1" \
  --virtual-time-budget=25000 --screenshot="$PWD/$2" "$3"; }
shot 1400,900 tensorboard.png 'http://localhost:6006/?darkMode=false#scalars&tagFilter=accuracy'
shot 1800,1000 mlflow.png 'http://localhost:5000/#/experiments/1/runs?compareRunsMode=CHART'
kill "$tb" "$ml"
