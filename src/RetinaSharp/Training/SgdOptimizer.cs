// SGD with momentum and L2 weight decay, torch.optim.SGD semantics (dampening 0, no Nesterov): the
// optimiser of the RetinaNet paper, section 5 (momentum 0.9, weight decay 1e-4).
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Training;

/// <summary>SGD with momentum (torch.optim.SGD, dampening 0): g += wd * p; buf = m * buf + g (buf = g on the first step); p -= lr * buf.</summary>
public sealed class SgdOptimizer : TrainingOptimizer
{
    private readonly Tensor?[] _momentum;

    /// <summary>Creates the optimiser.</summary>
    /// <param name="parameters">Named parameters; those without requires_grad are skipped.</param>
    /// <param name="momentum">Momentum in [0, 1).</param>
    /// <param name="weightDecay">L2 weight decay (&gt;= 0).</param>
    /// <param name="normParameters">Parameter names that get <paramref name="normWeightDecay"/> instead (see <see cref="TrainingOptimizer.NormParameterNames"/>).</param>
    /// <param name="normWeightDecay">Their weight decay, or null for <paramref name="weightDecay"/>.</param>
    /// <exception cref="ArgumentException"><paramref name="momentum"/> not in [0, 1) or a weight decay negative.</exception>
    public SgdOptimizer(IEnumerable<(string Name, Tensor Parameter)> parameters, double momentum = 0.9, double weightDecay = 1e-4,
        IReadOnlySet<string>? normParameters = null, double? normWeightDecay = null) : base(parameters)
    {
        if (!(momentum >= 0 && momentum < 1)) throw new ArgumentException($"Momentum must be in [0, 1); got {momentum}.", nameof(momentum));
        SetWeightDecay(weightDecay, normParameters, normWeightDecay);
        Momentum = momentum;
        WeightDecay = weightDecay;
        _momentum = new Tensor?[Parameters.Count];
    }

    /// <summary>The momentum factor.</summary>
    public double Momentum { get; }
    /// <summary>The L2 weight decay (of every parameter not exempted; see <see cref="TrainingOptimizer.ParameterWeightDecay"/>).</summary>
    public double WeightDecay { get; }

    /// <inheritdoc/>
    protected override void Update(int index, Tensor parameter, Tensor grad, double learningRate)
    {
        double wd = ParameterWeightDecay[index];
        // Every Scalar is explicit and alive for the whole call (issue 17: an implicit one can be finalised mid-call).
        using var weightDecay = wd.ToScalar();
        using var momentum = Momentum.ToScalar();
        using var step = (-learningRate).ToScalar();
        var d = wd != 0 ? grad.add(parameter, alpha: weightDecay) : grad;
        if (Momentum != 0)
        {
            var buf = _momentum[index];
            if (buf is null)
            {
                buf = d.clone().DetachFromDisposeScope();
                _momentum[index] = buf;
            }
            else
            {
                buf.mul_(momentum).add_(d, TorchScalars.One);
            }
            d = buf;
        }
        parameter.add_(d, alpha: step);
    }

    /// <inheritdoc/>
    public override IReadOnlyDictionary<string, Tensor> StateTensors() => Collect(("momentum/", _momentum));

    /// <inheritdoc/>
    public override void LoadState(IReadOnlyDictionary<string, Tensor> state, long stepCount)
    {
        Restore(_momentum, "momentum/", state);
        StepCount = stepCount;
    }
}
