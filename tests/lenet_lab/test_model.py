"""LeNet-5 (exercise 2), dropout (exercise 5) and BatchNorm placement (exercise 7)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lenet_lab.model import LeNet5, count_parameters


def test_parameter_count_matches_the_sheet():
    # C1 6*(25+1) + C2 16*(6*25+1) + F3 120*(256+1) + F4 84*(120+1) + F5 10*(84+1)
    expected = 6 * 26 + 16 * 151 + 120 * 257 + 84 * 121 + 10 * 85
    assert expected == 44_426
    assert count_parameters(LeNet5()) == 44_426
    assert count_parameters(LeNet5(dropout=0.5)) == 44_426  # dropout has no parameters


def test_batchnorm_adds_twelve_parameters():
    model = LeNet5(batchnorm=True)
    assert count_parameters(model) == 44_426 + 12  # gamma and beta of 6 channels
    assert isinstance(model.norm, nn.BatchNorm2d) and model.norm.num_features == 6


def test_frozen_parameters_are_not_counted():
    model = LeNet5()
    model.f5.weight.requires_grad_(False)
    assert count_parameters(model) == 44_426 - 840


@pytest.mark.parametrize("kwargs", [{}, {"dropout": 0.5}, {"batchnorm": True}])
@pytest.mark.parametrize("n", [1, 7])
def test_output_is_n_by_10_logits(kwargs, n):
    model = LeNet5(**kwargs).eval()
    out = model(torch.rand(n, 1, 28, 28))
    assert out.shape == (n, 10)
    assert out.dtype == torch.float32
    # raw logits, not probabilities: rows do not sum to one and values may be negative
    assert not torch.allclose(out.sum(1), torch.ones(n))


def test_layer_shapes_follow_the_sheet():
    model = LeNet5()
    assert (model.c1.in_channels, model.c1.out_channels, model.c1.kernel_size) == (1, 6, (5, 5))
    assert (model.c2.in_channels, model.c2.out_channels, model.c2.kernel_size) == (6, 16, (5, 5))
    assert model.c1.stride == model.c2.stride == (1, 1)
    assert model.c1.padding == model.c2.padding == (0, 0)
    assert (model.f3.in_features, model.f3.out_features) == (256, 120)
    assert (model.f4.in_features, model.f4.out_features) == (120, 84)
    assert (model.f5.in_features, model.f5.out_features) == (84, 10)
    before, after = model.stem(torch.rand(2, 1, 28, 28))
    assert before.shape == after.shape == (2, 6, 12, 12)  # C1 24x24, pooled to 12x12


def test_num_classes_sets_the_output_width():
    assert LeNet5(num_classes=3)(torch.rand(2, 1, 28, 28)).shape == (2, 3)


def test_dropout_active_in_train_inactive_in_eval():
    torch.manual_seed(0)
    model = LeNet5(dropout=0.5)
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 2 and all(d.p == 0.5 for d in drops)
    assert model.drop_conv is drops[0] and model.drop_fc is drops[1]
    x = torch.rand(8, 1, 28, 28)
    model.train()
    assert not torch.equal(model(x), model(x))  # a fresh mask each pass
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_no_dropout_layers_without_dropout():
    model = LeNet5(dropout=0.0).train()
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(model(x), model(x))


def test_batchnorm_sits_between_c1_pool_and_c2(tiny_data_root):
    from lenet_lab.data import DataSource, load_split

    torch.manual_seed(0)
    model = LeNet5(batchnorm=True).train()
    x = load_split(DataSource(tiny_data_root, False, False), True).x[:128]
    with torch.no_grad():
        before, after = model.stem(x)  # train mode: normalized with the batch statistics
        # stem: features after C1 -> ReLU -> pool, then BatchNorm2d(6)
        assert torch.allclose(before, model.pool(torch.relu(model.c1(x))))
    assert before.mean() > 0.05  # ReLU features: far from zero mean
    assert torch.allclose(after.mean(dim=(0, 2, 3)), torch.zeros(6), atol=1e-4)
    std = after.std(dim=(0, 2, 3), unbiased=False)
    var_in = before.var(dim=(0, 2, 3), unbiased=False)
    # per channel std = sqrt(var / (var + eps)): 1 unless the channel barely varies
    assert torch.allclose(std, (var_in / (var_in + model.norm.eps)).sqrt(), atol=1e-3)
    live = var_in > 1e-3
    assert live.sum() >= 2
    assert torch.allclose(std[live], torch.ones(int(live.sum())), atol=1e-2)
    # and that normalized map is what C2 receives in forward
    seen = {}
    model.c2.register_forward_pre_hook(lambda m, inp: seen.update(c2_in=inp[0]))
    model.eval()  # deterministic check with running statistics
    with torch.no_grad():
        model(x)
        assert torch.allclose(seen["c2_in"], model.stem(x)[1])


def test_without_batchnorm_stem_is_identity():
    model = LeNet5()
    before, after = model.stem(torch.rand(2, 1, 28, 28))
    assert torch.equal(before, after)


def test_padded_lenet5_is_lecuns_32x32_network():
    """C1 156 + C2 2,416 + F3 16*5*5*120+120 = 48,120 + F4 10,164 + F5 850 = 61,706."""
    model = LeNet5(padding=2)
    assert 156 + 2_416 + 48_120 + 10_164 + 850 == 61_706 == count_parameters(model)
    assert model.c1.padding == (2, 2) and model.f3.in_features == 400
    before, _ = model.stem(torch.rand(2, 1, 28, 28))
    assert before.shape == (2, 6, 14, 14)  # C1 on the padded 32x32: 28x28, pooled to 14x14
    # padding the conv is padding the image with zeros (black background)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        ref = torch.nn.functional.conv2d(
            torch.nn.functional.pad(x, (2, 2, 2, 2)), model.c1.weight, model.c1.bias
        )
        torch.testing.assert_close(model.c1(x), ref)
    assert model(x).shape == (3, 10)


def test_norm_factory_places_any_normalization():
    model = LeNet5(norm=nn.InstanceNorm2d)
    assert isinstance(model.norm, nn.InstanceNorm2d) and model.norm.num_features == 6
