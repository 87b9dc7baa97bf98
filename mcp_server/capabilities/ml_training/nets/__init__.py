"""Neural-network training for ml_training: the shared epoch loop and the torch and Keras fits."""
