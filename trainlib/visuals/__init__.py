"""Visual diagnosis (the seed's chapter 4): TensorBoardX images, histograms, curves, projector."""
