"""Neural operators, PDE data and training."""

__all__: list[str] = []
