"""Train supervised, unsupervised and reinforcement-learning models as jobs."""
