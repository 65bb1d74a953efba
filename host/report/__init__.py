"""Reports: JSON results written as they happen, and a self-contained HTML page."""
