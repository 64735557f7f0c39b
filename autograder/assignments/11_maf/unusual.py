"""A correct solution of assignment 11_maf in another style than the reference: the ``unusual`` sample.

Its solution cells, by grade id (:mod:`.make_samples` writes them into the release): hidden
degrees spread evenly (``floor(k (D - 1) / h)``), masks as numpy arrays, weights in
``ParameterList`` objects, multiplied by the masks at every call, a while-loop inverse that returns
``(x, log_det)``, a ``torch.distributions`` base. The checks must give it full marks: they test
the contract, not the reference's way of writing it.
"""

#: solution grade id -> the cell's source.
UNUSUAL = {
"made_masks": '''def made_masks(n_inputs, hidden_sizes, ordering):
    """Masks (out, in) for MADE. My rule: hidden degrees spread evenly, floor(k (D-1) / h), in every layer."""
    D = n_inputs
    order = torch.as_tensor(list(ordering))
    if D < 2 or order.numel() != D or not torch.equal(order.sort().values, torch.arange(D)):
        raise ValueError("ordering must be a permutation of range(n_inputs)")
    degs = [order]
    for h in hidden_sizes:
        degs.append(torch.div(torch.arange(h) * (D - 1), h, rounding_mode="floor"))
    out = []
    for lower, upper in zip(degs[:-1], degs[1:]):
        out.append((upper.unsqueeze(1) >= lower.unsqueeze(0)).float().numpy())
    out.append((order.unsqueeze(1) > degs[-1].unsqueeze(0)).float().numpy())
    return out
''',
"made": '''class MADE(nn.Module):
    """Weights kept as plain parameters; the masks multiply them at every call."""

    def __init__(self, n_inputs, hidden_sizes=(64, 64), ordering=None):
        super().__init__()
        self.D = n_inputs
        self.order = list(range(n_inputs)) if ordering is None else list(ordering)
        ms = made_masks(n_inputs, list(hidden_sizes), self.order)
        ms[-1] = np.concatenate([ms[-1], ms[-1]], axis=0)
        sizes = [n_inputs] + list(hidden_sizes) + [2 * n_inputs]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for k, m in enumerate(ms):
            bound = 1 / math.sqrt(sizes[k])
            self.weights.append(nn.Parameter(torch.empty(sizes[k + 1], sizes[k]).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(sizes[k + 1]).uniform_(-bound, bound)))
            self.register_buffer(f"m{k}", torch.tensor(m, dtype=torch.float32))

    def forward(self, x):
        h = x
        n = len(self.weights)
        for k in range(n):
            h = h @ (self.weights[k] * getattr(self, f"m{k}")).T + self.biases[k]
            if k < n - 1:
                h = torch.relu(h)
        return h[:, :self.D], h[:, self.D:]
''',
"maf_layer": '''class MAFLayer(nn.Module):
    def __init__(self, n_inputs, hidden_sizes=(64, 64), ordering=None):
        super().__init__()
        self.net = MADE(n_inputs, hidden_sizes, ordering)

    def forward(self, x):
        m, a = self.net(x)
        return (x - m) / torch.exp(a), -torch.sum(a, 1)

    def inverse(self, z):
        x = torch.zeros_like(z)
        done = 0
        while done < z.shape[1]:  # position `done` of the ordering
            d = self.net.order.index(done)
            m, a = self.net(x)
            col = z[:, d] * torch.exp(a[:, d]) + m[:, d]
            x = torch.cat([x[:, :d], col[:, None], x[:, d + 1:]], dim=1)
            done += 1
        return x, torch.sum(a, 1)
''',
"maf": '''class MAF(nn.Module):
    def __init__(self, n_inputs=196, n_layers=5, hidden_sizes=(128,)):
        super().__init__()
        self.D = n_inputs
        self.layers = nn.ModuleList()
        for k in range(n_layers):
            order = list(range(n_inputs))
            if k % 2:
                order.reverse()
            self.layers.append(MAFLayer(n_inputs, hidden_sizes, order))
        self.base = torch.distributions.Normal(0.0, 1.0)

    def forward(self, x):
        total = 0
        for layer in self.layers:
            x, ld = layer(x)
            total = total + ld
        return x, total

    def inverse(self, z):
        for layer in self.layers[::-1]:
            z, _ = layer.inverse(z)
        return z

    def log_prob(self, x):
        z, ld = self.forward(x)
        return self.base.log_prob(z).sum(-1) + ld

    @torch.no_grad()
    def sample(self, n):
        return self.inverse(torch.randn(n, self.D))
''',
}
