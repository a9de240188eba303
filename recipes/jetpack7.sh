# edgeseg on JetPack 7.x (Thor: L4T 38, Python 3.12, CUDA 13.0, TensorRT 10.13+), from a clone:
#   git clone <edgeseg repository> edgeseg && cd edgeseg && bash recipes/jetpack7.sh
# The system OpenCV (built with GStreamer), TensorRT bindings and camera elements:
sudo apt-get install -y python3-opencv python3-libnvinfer nvidia-l4t-gstreamer python3-venv python3-gi gstreamer1.0-tools
# A venv that sees them (never a pip OpenCV, never torch); EDGESEG_ENV moves it elsewhere:
EDGESEG_ENV="${EDGESEG_ENV:-$HOME/edgeseg-env}"
python3 -m venv --system-site-packages "$EDGESEG_ENV"
. "$EDGESEG_ENV/bin/activate"
# edgeseg from this clone with ONNX Runtime and the engine tools (onnx, cuda-python 13.x);
# the constraints keep numpy 1.x (the system OpenCV needs it) and refuse any pip OpenCV:
pip install -c recipes/jetpack7-constraints.txt '.[engine,onnx]'
edgeseg doctor
