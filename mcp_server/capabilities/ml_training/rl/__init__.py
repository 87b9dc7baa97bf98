"""The reinforcement-learning engine of ml_training: the Ray runtime, RLlib PPO/DQN, our A3C."""
