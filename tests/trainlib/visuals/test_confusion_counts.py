"""The train-batches confusion matrix: the batches' (true, predicted) pairs kept on the device during
the epoch and counted once at its end."""
from __future__ import annotations

import torch

from trainlib.engine import BatchStep
from trainlib.metrics import confusion_matrix
from trainlib.visual_settings import EveryEpochs
from trainlib.visuals.confusion import ConfusionFigure


def test_train_batches_are_counted_as_one_confusion_matrix_at_the_epochs_end():
    figure = ConfusionFigure(EveryEpochs())
    figure.class_names, figure.counting = ["a", "b", "c"], True
    gen = torch.Generator().manual_seed(0)
    steps = [BatchStep(i, torch.zeros(5, 1), torch.randint(0, 3, (5,), generator=gen),
                       torch.randn(5, 3, generator=gen), torch.zeros(())) for i in range(4)]
    mixed = torch.softmax(torch.randn(5, 3, generator=gen), 1)  # a mixup batch: class probabilities
    steps.append(BatchStep(4, torch.zeros(5, 1), mixed, torch.randn(5, 3, generator=gen), torch.zeros(())))
    for step in steps:
        figure.after_backward(step)
    true = torch.cat([s.targets if s.targets.dim() == 1 else s.targets.argmax(1) for s in steps])
    predicted = torch.cat([s.logits.argmax(1) for s in steps])
    counts = figure._counts(figure.train_batches)
    assert torch.equal(counts, confusion_matrix(predicted, true, 3)) and int(counts.sum()) == 25
    figure.counting = False
    figure.after_backward(steps[0])
    assert len(figure.train_batches) == 5  # an epoch that draws no matrix keeps nothing
