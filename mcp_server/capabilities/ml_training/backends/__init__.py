"""Training off the server's machine (`backend` on train_xgboost / train_neural_network):
`ray_train.py` (Ray Train on a Ray cluster) and `sagemaker.py` (SageMaker training jobs).
Each backend is a `Backend` row of its trainer (ml_training/capability.py) and ends in the same
bundle as local training."""
