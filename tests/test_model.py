import pytest
import torch

from flaredetect.models.transformer import FlareTransformer, attention_rollout


def small(**kw):
    args = dict(seq_len=20, d_model=16, num_heads=4, num_layers=2, d_ff=32, dropout=0.1, head_hidden=[32, 8])
    args.update(kw)
    return FlareTransformer(**args)


def test_shapes_and_heads():
    net = small(cadence_head=True).eval()
    out = net(torch.randn(5, 20, 3), return_attention=True)
    assert out["logit"].shape == (5,)
    assert out["cadence_logit"].shape == (5, 20)
    assert len(out["attention"]) == 2
    assert out["attention"][0].shape == (5, 4, 20, 20)
    assert "attention" not in net(torch.randn(2, 20, 3))


def test_attention_rows_sum_to_one():
    net = small().eval()
    out = net(torch.randn(3, 20, 3), return_attention=True)
    for layer in out["attention"]:
        torch.testing.assert_close(layer.sum(-1), torch.ones(3, 4, 20))
    rollout = attention_rollout(out["attention"])
    torch.testing.assert_close(rollout.sum(-1), torch.ones(3, 20))


def test_fused_and_explicit_attention_agree():
    torch.manual_seed(0)
    net = small(num_layers=3, cadence_head=True).eval()
    x = torch.randn(4, 20, 3)
    fused = net(x)
    explicit = net(x, return_attention=True)
    torch.testing.assert_close(fused["logit"], explicit["logit"], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fused["cadence_logit"], explicit["cadence_logit"], atol=1e-5, rtol=1e-4)


def test_mean_pooling_and_thesis_sizes():
    assert small(pooling="mean")(torch.randn(2, 20, 3))["logit"].shape == (2,)
    thesis = FlareTransformer()  # thesis defaults
    assert thesis.layers[0].qkv.in_features == 256 and len(thesis.layers) == 2
    assert thesis.head[0].in_features == 100 * 256


def test_invalid_sizes_name_the_keys():
    with pytest.raises(ValueError, match=r"model.d_model=250 is not divisible by model.num_heads=8"):
        FlareTransformer(d_model=250, num_heads=8)
    with pytest.raises(ValueError, match="model.dropout"):
        small(dropout=1.5)
    with pytest.raises(ValueError, match="seq_len=20"):
        small()(torch.randn(1, 30, 3))
