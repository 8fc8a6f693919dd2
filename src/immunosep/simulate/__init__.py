"""Virtual patients calibrated to the published trial, virtual trials and the Monte Carlo engine."""
