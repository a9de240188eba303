# edgeseg on JetPack 6.1 / 6.2 (Orin: L4T 36, Python 3.10, CUDA 12.6, TensorRT 10.3), from a clone:
#   git clone <edgeseg repository> edgeseg && cd edgeseg && bash recipes/jetpack6.sh
# JetPack's own OpenCV (built with GStreamer), TensorRT bindings and camera elements:
sudo apt-get install -y nvidia-opencv python3-libnvinfer nvidia-l4t-gstreamer python3-venv python3-gi gstreamer1.0-tools
# A venv that sees them (never a pip OpenCV, never torch); EDGESEG_ENV moves it elsewhere:
EDGESEG_ENV="${EDGESEG_ENV:-$HOME/edgeseg-env}"
python3 -m venv --system-site-packages "$EDGESEG_ENV"
. "$EDGESEG_ENV/bin/activate"
# edgeseg from this clone with ONNX Runtime and the engine tools (onnx, cuda-python 12.x);
# the constraints keep numpy 1.x (JetPack's OpenCV needs it) and refuse any pip OpenCV:
pip install -c recipes/jetpack6-constraints.txt '.[engine,onnx]'
edgeseg doctor
