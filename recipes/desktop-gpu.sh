# edgeseg on a desktop or server with an NVIDIA GPU (driver for CUDA 12.x), from a clone:
#   git clone <edgeseg repository> edgeseg && cd edgeseg && bash recipes/desktop-gpu.sh
# A plain venv: here the pip OpenCV (with FFmpeg) is the one to use, and torch exports and trains.
EDGESEG_ENV="${EDGESEG_ENV:-$HOME/edgeseg-env}"
python3 -m venv "$EDGESEG_ENV"
. "$EDGESEG_ENV/bin/activate"
# PyTorch built for CUDA 12.6 first (pytorch.org's selector names the index for other CUDAs):
pip install torch --index-url https://download.pytorch.org/whl/cu126
# edgeseg from this clone with everything, TensorRT from pip, cuda-python 12.x:
pip install -c recipes/desktop-gpu-constraints.txt -e '.[opencv,onnx,train,export,engine]' 'tensorrt-cu12>=10.3'
edgeseg doctor
