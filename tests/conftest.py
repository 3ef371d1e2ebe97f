import os

# Quiet TensorFlow's C++ logging in test output; set before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
