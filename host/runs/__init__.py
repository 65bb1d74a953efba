"""Runs over many images: a labelled set through a DUT and the reference, journaled and resumable."""
