# Sourced by the training comparisons: default_dual_model CLIPKIT prints the path of random
# ViT-B/32 + roberta-base towers composed into a dual encoder under build-bench/ (made once).
default_dual_model() {
  local bin=$1 model=build-bench/vit-b32-roberta-base
  if [ ! -f "$model/model.safetensors" ]; then
    "$bin" init --arch clip-vit-base-patch32 --out build-bench/vit-b32 >/dev/null
    "$bin" init --arch roberta-base --out build-bench/roberta-base >/dev/null
    "$bin" compose --vision build-bench/vit-b32 --text build-bench/roberta-base --out "$model" >/dev/null
  fi
  echo "$model"
}
