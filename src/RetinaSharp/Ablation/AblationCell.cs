// One trained configuration of the miniature Table 1 (Lin et al. 2017, "Focal Loss for Dense Object Detection",
// section 5.1 and Table 1): the demo recipe with exactly the paper's ablated knobs set, nothing else.
using System.Globalization;
using RetinaSharp.Recipes;

namespace RetinaSharp.Ablation;

/// <summary>The anchor set of a cell (paper Table 1c).</summary>
public enum AnchorGrid
{
    /// <summary>The recipe's anchors: 3 octave scales (2^0, 2^(1/3), 2^(2/3)) x 3 aspect ratios (0.5, 1, 2) per location (the paper's default, A = 9).</summary>
    ThreeScalesThreeRatios,
    /// <summary>One anchor per location: the first (2^0) scale of each level and aspect ratio 1 (Table 1c's first row, A = 1).</summary>
    OneScaleOneRatio,
}

/// <summary>
/// One training run of the ablation: the classification loss (focal loss α and γ; γ = 0 is α-balanced cross entropy),
/// the prior π of the classification bias at the start (π = 0.5 gives a bias of exactly 0, the "zero bias" of section
/// 3.3) and the anchors. Everything else comes from the base recipe (<see cref="Apply"/>), so two cells differ only in
/// these knobs. Cells shared by several sub-tables (FL γ = 2, α = .25, π = .01, 3 x 3 anchors is in b, c and d) are
/// trained once.
/// </summary>
/// <param name="Id">The folder name under <c>cells/</c> and the key in <c>table.json</c> (for example "fl-g2-a0.25").</param>
/// <param name="Alpha">Focal loss α, the weight of the positives, in [0, 1].</param>
/// <param name="Gamma">Focal loss γ &gt;= 0; 0 is α-balanced cross entropy.</param>
/// <param name="PriorProbability">π in (0, 1): the classification bias starts at -log((1 - π) / π); 0.01 (the paper) or 0.5 (bias 0).</param>
/// <param name="Anchors">The anchors per location.</param>
public sealed record AblationCell(string Id, double Alpha, double Gamma, double PriorProbability, AnchorGrid Anchors)
{
    /// <summary>The paper's prior π = 0.01 (section 3.3).</summary>
    public const double PaperPrior = 0.01;

    /// <summary>The prior whose bias -log((1 - π) / π) is exactly 0: "zero bias".</summary>
    public const double ZeroBiasPrior = 0.5;

    /// <summary>True for γ = 0 (α-balanced cross entropy).</summary>
    public bool IsCrossEntropy => Gamma == 0;

    /// <summary>A short human label, for example "CE α=0.5, zero bias" or "FL γ=2 α=0.25, 1x1 anchors".</summary>
    public string Label
    {
        get
        {
            var inv = CultureInfo.InvariantCulture;
            string loss = IsCrossEntropy ? string.Create(inv, $"CE α={Alpha}") : string.Create(inv, $"FL γ={Gamma} α={Alpha}");
            if (PriorProbability == ZeroBiasPrior) loss += ", zero bias";
            else if (PriorProbability != PaperPrior) loss += string.Create(inv, $", π={PriorProbability}");
            if (Anchors == AnchorGrid.OneScaleOneRatio) loss += ", 1x1 anchors";
            return loss;
        }
    }

    /// <summary>
    /// <paramref name="recipe"/> with this cell's knobs in its model: <see cref="Modeling.RetinaNetOptions.Alpha"/>,
    /// <see cref="Modeling.RetinaNetOptions.Gamma"/>, <see cref="Modeling.RetinaNetOptions.PriorProbability"/> and, for
    /// <see cref="AnchorGrid.OneScaleOneRatio"/>, the first anchor size of each level with aspect ratio 1. Nothing else changes.
    /// </summary>
    /// <param name="recipe">The base recipe (the ablation uses <see cref="TrainingRecipe.Demo"/> with ImageNet weights).</param>
    public TrainingRecipe Apply(TrainingRecipe recipe)
    {
        ArgumentNullException.ThrowIfNull(recipe);
        var m = recipe.Model with { Alpha = Alpha, Gamma = Gamma, PriorProbability = PriorProbability };
        if (Anchors == AnchorGrid.OneScaleOneRatio)
            m = m with { AnchorSizes = [.. m.EffectiveAnchorSizes().Select(level => new[] { level[0] })], AspectRatios = [1.0] };
        return recipe with { Model = m };
    }
}
