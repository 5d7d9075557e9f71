"""Cloud provider layer: pure builders of provider CLI calls and parsers of their output."""
