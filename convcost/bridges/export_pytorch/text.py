"""The text of the generated file: the small modules torch lacks (written out when used), each class's
source with long lines wrapped as a formatter would, and the file around them."""

from __future__ import annotations

from ...spec import Spec
from .names import Class

__all__ = ["HELPERS", "HELPER_NEEDS", "render_class", "source_file"]

HELPERS = {
    "LayerNormOverChannels": '''class LayerNormOverChannels(nn.LayerNorm):
    """LayerNorm over the channels at every position (ConvNeXt's LayerNorm2d)."""

    def forward(self, x):
        return super().forward(x.movedim(1, -1)).movedim(x.dim() - 1, 1)
''',
    "LinearOverChannels": '''class LinearOverChannels(nn.Linear):
    """nn.Linear on the channels at every position (ConvNeXt's MLP; a 1x1 conv's arithmetic)."""

    def forward(self, x):
        return super().forward(x.movedim(1, -1)).movedim(x.dim() - 1, 1)
''',
    "LayerScale": '''class LayerScale(nn.Module):
    """A learned scale per channel (ConvNeXt, CaiT)."""

    def __init__(self, channels, spatial_dims=2, init=1e-6):
        super().__init__()
        self.scale = nn.Parameter(torch.full((channels,) + (1,) * spatial_dims, init))

    def forward(self, x):
        return x * self.scale
''',
    "SqueezeExcitation": '''class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation as torchvision's: pool, 1x1 conv down and up, gate, multiply."""

    def __init__(self, channels, squeeze, activation=nn.ReLU, gate=nn.Sigmoid):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeeze, 1)
        self.activation = activation()
        self.expand = nn.Conv2d(squeeze, channels, 1)
        self.gate = gate()

    def forward(self, x):
        return x * self.gate(self.expand(self.activation(self.reduce(self.pool(x)))))
''',
    "ChannelShuffle": '''class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle: reshape to groups, swap, flatten back."""

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        n, c, *spatial = x.shape
        x = x.reshape(n, self.groups, c // self.groups, *spatial).transpose(1, 2)
        return x.reshape(n, c, *spatial)
''',
    "center_crop": '''def center_crop(x, size):
    """The centre of x's spatial axes, cut to size (as torchvision's center_crop)."""
    starts = [(have - want) // 2 for have, want in zip(x.shape[2:], size)]
    return x[(..., *(slice(s, s + want) for s, want in zip(starts, size)))]
''',
    "cat_cropped": '''def cat_cropped(tensors, dim=1):
    """Concatenate after a centre crop of every tensor to the smallest (U-Net's skips)."""
    size = [min(t.shape[axis] for t in tensors) for axis in range(2, tensors[0].dim())]
    cropped = [t if list(t.shape[2:]) == size else center_crop(t, size) for t in tensors]
    return torch.cat(cropped, dim)
''',
}
HELPER_NEEDS = {"cat_cropped": ("center_crop",)}  # helpers a helper calls
_WIDTH = 100  # the page width generated lines are wrapped to


def source_file(spec: Spec, network_cls: Class, templates: list[Class], used: list[str]) -> str:
    """The file: a docstring, the imports, the helpers used, the blocks' classes, the network's class, and
    a main that builds the model and runs it once."""
    blocks = [render_class(cls) for cls in templates]
    helpers = [HELPERS[name] for name in sorted(used, key=list(HELPERS).index)]
    inputs = ", ".join(f"{name} {'x'.join(map(str, shape))}" for name, shape in spec.inputs)
    header = (f'"""{spec.name} as PyTorch modules, exported by convcost.\n\n'
              f"Spec: {spec.source}\n"
              f"Input{'s' if len(spec.inputs) > 1 else ''} (channels first, batch excluded): {inputs}.\n"
              '"""\n\nimport torch\nfrom torch import nn\n')
    parts = [header, *helpers, *blocks, render_class(network_cls)]
    shapes = ", ".join(f"torch.randn(1, {', '.join(map(str, shape))})" for _, shape in spec.inputs)
    parts.append(f'if __name__ == "__main__":\n    model = {network_cls.name}().eval()\n'
                 f"    print(sum(p.numel() for p in model.parameters()), \"parameters\")\n"
                 f"    model({shapes})\n")
    return "\n\n".join(part.rstrip("\n") + "\n" for part in parts)


def render_class(cls: Class) -> str:
    """The source of one ``nn.Module`` class, long lines wrapped."""
    init_args = ", ".join(["self", *cls.args])
    forward_args = ", ".join(["self", *cls.forward_args])
    lines = [f"class {cls.name}(nn.Module):", f'    """{cls.doc}"""', "", f"    def __init__({init_args}):",
             "        super().__init__()"]
    for line in cls.init:
        indent = "        " + " " * (len(line) - len(line.lstrip(" ")))
        lines += _wrapped(line.lstrip(" "), indent)
    if not cls.concrete:
        lines.append(f"        self.out_channels = {cls.out_channels}")
    lines += ["", f"    def forward({forward_args}):"]
    for line in cls.forward:
        indent = "        " + " " * (len(line) - len(line.lstrip(" ")))
        lines += _wrapped(line.lstrip(" "), indent)
    return "\n".join(lines) + "\n"


def _split_arguments(text: str) -> list[str]:
    """The top-level comma-separated parts of ``text`` (brackets and strings kept whole)."""
    parts, depth, start, quote = [], 0, 0, ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index].strip())
            start = index + 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]


def _wrapped(line: str, indent: str) -> list[str]:
    """A line too long for the page as a formatter writes it: the call's arguments on the next line, or
    one per line with a trailing comma."""
    if len(indent) + len(line) <= _WIDTH or not line.endswith(")") or "(" not in line:
        return [indent + line]
    head, _, rest = line.partition("(")
    if head.count("[") != head.count("]"):
        return [indent + line]
    arguments = _split_arguments(rest[:-1])
    inner = indent + "    "
    joined = ", ".join(arguments)
    if len(inner) + len(joined) <= _WIDTH:
        return [f"{indent}{head}(", inner + joined, f"{indent})"]
    return [f"{indent}{head}(", *(f"{inner}{argument}," for argument in arguments), f"{indent})"]

