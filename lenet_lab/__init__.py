"""LeNet-5 on FashionMNIST: data, model, regularizers, training loop and run artifacts."""

__version__ = "0.1.0"
