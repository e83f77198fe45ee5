"""Image-quality measurement and the automatic quality search (``q=auto``)."""
