"""Assignment 10_ar: a PixelCNN of MNIST digits (nbgrader source ``solutions/10_ar/pixelcnn.ipynb``)."""
