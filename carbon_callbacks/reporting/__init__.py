"""What is made from run logs and figures: reports, estimates, text, exports, plots; no meter."""
