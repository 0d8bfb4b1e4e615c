// The optimisers of the trainer: SGD with momentum and L2 weight decay (torch.optim.SGD semantics,
// dampening 0, no Nesterov: the paper's section 5 optimiser) and AdamW (torch.optim.AdamW, decoupled weight
// decay, Loshchilov & Hutter 2019). Written on tensors rather than wrapping TorchSharp's native optimisers so
// that the whole state (moment buffers, step count) is explicit and saved bit-exactly in a checkpoint.
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Training;

/// <summary>Which optimiser a run uses.</summary>
public enum OptimizerKind
{
    /// <summary>SGD with momentum and L2 weight decay (the paper).</summary>
    Sgd,
    /// <summary>AdamW with decoupled weight decay.</summary>
    AdamW,
}

/// <summary>
/// An optimiser whose state can be saved and restored exactly. Parameters are updated in place under
/// <c>no_grad</c>; the learning rate is given at each step by the schedule.
/// </summary>
public abstract class TrainingOptimizer
{
    /// <summary>Creates the optimiser over <paramref name="parameters"/> (those with requires_grad).</summary>
    protected TrainingOptimizer(IEnumerable<(string Name, Tensor Parameter)> parameters)
    {
        Parameters = parameters.Where(p => p.Parameter.requires_grad).ToList();
    }

    /// <summary>The trained parameters by state_dict name, in module order.</summary>
    public IReadOnlyList<(string Name, Tensor Parameter)> Parameters { get; }

    /// <summary>The number of steps taken so far.</summary>
    public long StepCount { get; protected set; }

    /// <summary>Creates the optimiser of <paramref name="kind"/>.</summary>
    /// <param name="kind">SGD or AdamW.</param>
    /// <param name="parameters">Named parameters (for example <c>module.named_parameters()</c>).</param>
    /// <param name="weightDecay">L2 (SGD) or decoupled (AdamW) weight decay, &gt;= 0.</param>
    /// <param name="momentum">SGD momentum in [0, 1) (paper: 0.9); ignored by AdamW.</param>
    /// <param name="normParameters">Names of the normalisation layers' parameters (<see cref="NormParameterNames"/>), which get
    /// <paramref name="normWeightDecay"/> instead; null = none.</param>
    /// <param name="normWeightDecay">Weight decay of <paramref name="normParameters"/> (&gt;= 0), or null for <paramref name="weightDecay"/>.</param>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public static TrainingOptimizer Create(OptimizerKind kind, IEnumerable<(string Name, Tensor Parameter)> parameters, double weightDecay, double momentum = 0.9,
        IReadOnlySet<string>? normParameters = null, double? normWeightDecay = null) =>
        kind switch
        {
            OptimizerKind.Sgd => new SgdOptimizer(parameters, momentum, weightDecay, normParameters, normWeightDecay),
            OptimizerKind.AdamW => new AdamWOptimizer(parameters, weightDecay, normParameters: normParameters, normWeightDecay: normWeightDecay),
            _ => throw new ArgumentException($"Unknown optimiser {kind}.", nameof(kind)),
        };

    /// <summary>
    /// The state_dict names of the parameters of normalisation layers in <paramref name="module"/> (BatchNorm1d/2d/3d,
    /// GroupNorm, LayerNorm, InstanceNorm1d/2d/3d), the set torchvision's <c>split_normalization_params</c> exempts from
    /// weight decay with <c>--norm-weight-decay 0</c>. Frozen batch norm has buffers only, so it adds nothing.
    /// </summary>
    public static IReadOnlySet<string> NormParameterNames(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (prefix, m) in module.named_modules())
        {
            if (m is not (TorchSharp.Modules.BatchNorm or TorchSharp.Modules.GroupNorm
                or TorchSharp.Modules.LayerNorm or TorchSharp.Modules.InstanceNorm1d or TorchSharp.Modules.InstanceNorm2d or TorchSharp.Modules.InstanceNorm3d))
                continue;
            foreach (var (name, _) in m.named_parameters(recurse: false))
                names.Add(prefix.Length == 0 ? name : prefix + "." + name);
        }
        return names;
    }

    /// <summary>The weight decay of each of <see cref="Parameters"/>, in order.</summary>
    public IReadOnlyList<double> ParameterWeightDecay => _decay;

    private double[] _decay = [];

    /// <summary>Sets <see cref="ParameterWeightDecay"/>: <paramref name="weightDecay"/>, or <paramref name="normWeightDecay"/> for the names in <paramref name="normParameters"/>.</summary>
    /// <exception cref="ArgumentException">A weight decay is negative or not a number.</exception>
    protected void SetWeightDecay(double weightDecay, IReadOnlySet<string>? normParameters, double? normWeightDecay)
    {
        if (!(weightDecay >= 0)) throw new ArgumentException($"Weight decay must be >= 0; got {weightDecay}.", nameof(weightDecay));
        if (normWeightDecay is double nd && !(nd >= 0)) throw new ArgumentException($"Norm weight decay must be >= 0; got {nd}.", nameof(normWeightDecay));
        _decay = [.. Parameters.Select(p => normWeightDecay is double d && normParameters?.Contains(p.Name) == true ? d : weightDecay)];
    }

    /// <summary>Clears the gradients of all parameters.</summary>
    public void ZeroGrad()
    {
        foreach (var (_, p) in Parameters)
        {
            var g = p.grad;
            if (g is not null) { g.Dispose(); p.grad = null; }
        }
    }

    /// <summary>
    /// The L2 norm of all gradients together (torch.nn.utils.clip_grad_norm_ with norm type 2); when
    /// <paramref name="maxNorm"/> is given and the norm exceeds it, gradients are scaled by maxNorm / (norm + 1e-6).
    /// </summary>
    /// <param name="maxNorm">The clipping threshold, or null to only measure.</param>
    /// <returns>The norm before clipping (NaN or infinity when a gradient is not finite; then nothing is scaled).</returns>
    public double GradientNorm(double? maxNorm)
    {
        using var scope = NewDisposeScope();
        var grads = Parameters.Select(p => p.Parameter.grad).Where(g => g is not null).Select(g => g!).ToList();
        if (grads.Count == 0) return 0;
        using var _ = no_grad();
        var total = stack(grads.Select(g => g.detach().to(ScalarType.Float32).pow(TorchScalars.Two).sum()).ToArray()).sum().sqrt();
        double norm = total.item<float>();
        if (maxNorm is double max && double.IsFinite(norm) && norm > max)
        {
            using var scale = (max / (norm + 1e-6)).ToScalar();
            foreach (var g in grads) g.mul_(scale);
        }
        return norm;
    }

    /// <summary>Updates every parameter that has a gradient with learning rate <paramref name="learningRate"/>.</summary>
    public void Step(double learningRate)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        StepCount++;
        for (int i = 0; i < Parameters.Count; i++)
        {
            var p = Parameters[i].Parameter;
            var g = p.grad;
            if (g is null) continue;
            Update(i, p, g, learningRate);
        }
    }

    /// <summary>Updates parameter <paramref name="index"/> in place (called under no_grad inside a dispose scope).</summary>
    protected abstract void Update(int index, Tensor parameter, Tensor grad, double learningRate);

    /// <summary>The state tensors to checkpoint, by key ("momentum/NAME", ...); they are owned by the optimiser.</summary>
    public abstract IReadOnlyDictionary<string, Tensor> StateTensors();

    /// <summary>Restores the state saved from <see cref="StateTensors"/> and <see cref="StepCount"/>.</summary>
    /// <exception cref="ArgumentException">A tensor is missing or has the wrong shape (a checkpoint of another model).</exception>
    public abstract void LoadState(IReadOnlyDictionary<string, Tensor> state, long stepCount);

    /// <summary>Replaces each of <paramref name="buffers"/> by a copy of <paramref name="state"/>["prefix + parameter name"], or null when absent.</summary>
    protected void Restore(Tensor?[] buffers, string prefix, IReadOnlyDictionary<string, Tensor> state)
    {
        using var _ = no_grad();
        for (int i = 0; i < Parameters.Count; i++)
        {
            var (name, p) = Parameters[i];
            buffers[i]?.Dispose();
            buffers[i] = null;
            if (!state.TryGetValue(prefix + name, out var t)) continue;
            if (!t.shape.SequenceEqual(p.shape))
                throw new ArgumentException($"Optimiser state '{prefix + name}' has shape [{string.Join(",", t.shape)}], the parameter has [{string.Join(",", p.shape)}].", nameof(state));
            var b = zeros_like(p);
            b.copy_(t);
            buffers[i] = b.DetachFromDisposeScope();
        }
    }

    /// <summary>Collects the non-null buffers under "prefix + name".</summary>
    protected IReadOnlyDictionary<string, Tensor> Collect(params (string Prefix, Tensor?[] Buffers)[] sets)
    {
        var d = new Dictionary<string, Tensor>();
        foreach (var (prefix, buffers) in sets)
            for (int i = 0; i < Parameters.Count; i++)
                if (buffers[i] is Tensor b) d[prefix + Parameters[i].Name] = b;
        return d;
    }
}
