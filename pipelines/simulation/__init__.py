"""The outcome simulation behind `rewards simulate`: the planted treatment effect and one simulated window."""
