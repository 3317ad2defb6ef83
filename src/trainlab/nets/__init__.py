"""Plain nn.Modules. No Lightning in here: a network can be reused in any training loop."""
