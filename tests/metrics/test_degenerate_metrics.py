"""The degenerate-output checks on hand-made counts (issue 29)."""

import torch

from dcvkit.metrics.degenerate import OutputSpread, constant_output, no_boxes, one_class

CLASSES = ["background", "coat", "bag"]


def test_one_class_names_the_class_and_its_share_of_the_truth():
    note = one_class([8847, 0, 0], CLASSES, "pixel", truth=[8847, 1000, 153])
    assert note.startswith("the model predicts 'background' for every pixel (8,847 pixels)")
    assert "'background' is 88.5% of the truth" in note
    assert one_class([10, 1, 0], CLASSES) is None  # two classes predicted
    assert one_class([5, 0, 0], CLASSES, truth=[5, 0, 0]) is None  # the truth holds one class too: right
    assert one_class([0, 0, 0], CLASSES) is None  # nothing counted: nothing to say
    assert "every image (12 images)" in one_class([0, 12, 0], CLASSES)


def test_no_boxes_and_a_constant_output():
    assert no_boxes(0, 40) == "the model detected no box in any of the 40 images"
    assert no_boxes(1, 40) is None and no_boxes(0, 0) is None
    spread = OutputSpread()
    for _ in range(3):  # batch by batch, as validation sees them
        spread.update(torch.tensor([[0.2, 0.5, 0.3]]).repeat(4, 1))
    assert spread.n == 12 and float(spread.std().max()) < 1e-6
    assert "the same for all 12 images" in constant_output(spread.std(), spread.n)
    varied = OutputSpread()
    varied.update(torch.tensor([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1]]))
    assert torch.allclose(varied.std(), torch.tensor([0.4, 0.375, 0.025], dtype=torch.float64))
    assert constant_output(varied.std(), 2) is None
