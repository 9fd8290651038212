"""Metrics against hand-computed values."""

import pytest
import torch

from mmbench.metrics import (
    AntiSpoofingMeter,
    ClassificationMeter,
    SegmentationMeter,
    classification_scores,
    spoofing_error_rates,
)
from mmbench.metrics.confusion import confusion_matrix


def one_hot_logits(pred, num_classes):
    return torch.nn.functional.one_hot(torch.tensor(pred), num_classes).float()


def test_classification_hand_computed():
    # truth 0 0 1 1 2 2 ; pred 0 1 1 1 2 0
    truth = torch.tensor([0, 0, 1, 1, 2, 2])
    pred = [0, 1, 1, 1, 2, 0]
    meter = ClassificationMeter(3)
    meter.update(one_hot_logits(pred[:3], 3), truth[:3])  # two batches: accumulated, not averaged
    meter.update(one_hot_logits(pred[3:], 3), truth[3:])
    scores = meter.compute()
    # F1: class0 P=1/2 R=1/2 -> 0.5; class1 P=2/3 R=1 -> 0.8; class2 P=1 R=1/2 -> 2/3
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert scores["weighted_f1"] == pytest.approx((0.5 * 2 + 0.8 * 2 + 2 / 3 * 2) / 6)
    assert meter.matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_macro_f1_skips_classes_absent_from_truth_and_prediction():
    matrix = torch.tensor([[2, 0, 0], [0, 1, 0], [0, 0, 0]])
    assert classification_scores(matrix)["macro_f1"] == pytest.approx(1.0)


def test_segmentation_ignore_index_and_accumulation():
    target = torch.tensor([[[0, 0], [1, 255]]])
    pred = torch.tensor([[[0, 1], [1, 1]]])
    logits = torch.nn.functional.one_hot(pred, 3).permute(0, 3, 1, 2).float()
    meter = SegmentationMeter(3, ignore_index=255)
    meter.update(logits, target)
    scores = meter.compute()
    # class0: TP1 FP0 FN1 -> 1/2; class1: TP1 FP1 FN0 -> 1/2; class2 absent from truth -> excluded
    assert scores["miou"] == pytest.approx(0.5)
    assert scores["pixel_accuracy"] == pytest.approx(2 / 3)
    # a second image where class 2 appears counts over the whole split
    meter.update(torch.nn.functional.one_hot(torch.tensor([[[2, 2], [2, 2]]]), 3).permute(0, 3, 1, 2).float(),
                 torch.tensor([[[2, 2], [2, 0]]]))
    scores = meter.compute()
    # class0: TP1 FP0 FN2 -> 1/3; class1: 1/2; class2: TP3 FP1 FN0 -> 3/4
    assert scores["miou"] == pytest.approx((1 / 3 + 1 / 2 + 3 / 4) / 3)


def test_confusion_matrix_drops_out_of_range_targets():
    m = confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 7]), 2)
    assert m.tolist() == [[1, 0], [0, 0]]


def test_spoofing_error_rates_iso_definitions():
    # label 1 = live (bona fide), 0 = spoof (attack)
    target = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    pred = torch.tensor([1, 1, 1, 0, 1, 1, 0, 0, 0, 0])
    rates = spoofing_error_rates(pred, target)
    assert rates["apcer"] == pytest.approx(2 / 6)  # attacks accepted as live
    assert rates["bpcer"] == pytest.approx(1 / 4)  # live rejected as attack
    assert rates["acer"] == pytest.approx((2 / 6 + 1 / 4) / 2)
    assert rates["accuracy"] == pytest.approx(7 / 10)


def test_spoofing_meter_absent_class_gives_zero_rate():
    meter = AntiSpoofingMeter()
    meter.update(one_hot_logits([1, 0], 2), torch.tensor([1, 1]))
    rates = meter.compute()
    assert rates["apcer"] == 0.0 and rates["bpcer"] == pytest.approx(0.5)
