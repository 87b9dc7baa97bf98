"""Load, validate, preprocess, engineer features, split and save datasets."""
