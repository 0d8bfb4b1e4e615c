// What `retina ablate` runs: the demo scenes and recipe (ImageNet ResNet-18-FPN, TrainingRecipe.Demo), one seed and one
// iteration count for every cell, and the resolved configuration of each cell: the record that is stored with a result
// and compared on a re-run (a changed configuration is never mixed into a table).
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using RetinaSharp.Data.FashionMnist;
using RetinaSharp.Pretrained;
using RetinaSharp.Recipes;
using RetinaSharp.Training;

namespace RetinaSharp.Ablation;

/// <summary>The settings of an ablation run. <see cref="Defaults"/> gives the full run or the quick smoke run.</summary>
/// <param name="OutputFolder">DIR: scenes/, cells/&lt;id&gt;/, table.md, table.json, ablation.png.</param>
public sealed record AblationOptions(string OutputFolder)
{
    /// <summary>Iterations per cell of the full run when neither <see cref="Iterations"/> nor <see cref="MinutesPerCell"/> is
    /// given: 400 steps of 8 images at 0.75 s a step (the demo's measured step on a quiet 2-core AMD EPYC, README) are 5
    /// minutes; 10 cells plus their evaluation and the scenes fit 60 minutes.</summary>
    public const long DefaultIterations = 400;

    /// <summary>Iterations per cell of the quick run (a smoke test: every file is written, the numbers mean nothing).</summary>
    public const long QuickIterations = 3;

    /// <summary>The total time the default full run is sized for, on a quiet 2-core CPU.</summary>
    public const double DefaultTotalMinutes = 60;

    /// <summary>The smoke run: few scenes, a small model (<see cref="TrainingRecipe.Demo"/> quick), <see cref="QuickIterations"/> per cell.</summary>
    public bool Quick { get; init; }
    /// <summary>Iterations of every cell, or null: from <see cref="MinutesPerCell"/>, else the cells already in the folder, else the default.</summary>
    public long? Iterations { get; init; }
    /// <summary>A training time per cell in minutes, converted once into a fixed iteration count (the same for every cell) by
    /// timing a few steps on this machine; null for <see cref="DefaultIterations"/>. Not with <see cref="Iterations"/>.</summary>
    public double? MinutesPerCell { get; init; }
    /// <summary>The sub-tables to run (their cells, each once). Default all four.</summary>
    public IReadOnlyList<AblationTable> Tables { get; init; } = [AblationTable.A, AblationTable.B, AblationTable.C, AblationTable.D];
    /// <summary>Seed of the scenes, the initialisation and the data order, the same for every cell. Default 0.</summary>
    public int Seed { get; init; }
    /// <summary>Train again the cells whose stored configuration differs from the one asked for (otherwise refused).</summary>
    public bool RedoChanged { get; init; }
    /// <summary>Training scenes (demo: 2000; quick: 32).</summary>
    public int TrainImages { get; init; } = 2000;
    /// <summary>Validation scenes, on which each cell's AP is measured (demo: 300; quick: 8).</summary>
    public int ValImages { get; init; } = 300;
    /// <summary>Scene side in pixels, the input size (demo: 128; quick: 64).</summary>
    public int Size { get; init; } = 128;

    /// <summary>The full run or the quick smoke run into <paramref name="outputFolder"/>.</summary>
    public static AblationOptions Defaults(string outputFolder, bool quick = false) => quick
        ? new AblationOptions(outputFolder) { Quick = true, TrainImages = 32, ValImages = 8, Size = 64 }
        : new AblationOptions(outputFolder);

    /// <summary>The scenes folder, DIR/scenes.</summary>
    public string ScenesFolder => Path.Combine(OutputFolder, "scenes");

    /// <summary>The folder of one cell, DIR/cells/&lt;id&gt;.</summary>
    public string CellFolder(string cellId) => Path.Combine(OutputFolder, "cells", cellId);

    /// <summary>The Fashion-MNIST scenes every cell trains and is evaluated on.</summary>
    public FashionScenesOptions Scenes => new(ScenesFolder, TrainImages, ValImages, Size, Seed);

    /// <summary>The recipe every cell starts from: <see cref="TrainingRecipe.Demo"/> at <see cref="Size"/> with ML.NET's ImageNet ResNet-18.</summary>
    public TrainingRecipe BaseRecipe => TrainingRecipe.Demo(Size, Quick, pretrained: true);

    /// <summary>Checks the values before any work.</summary>
    /// <exception cref="ArgumentException">A value is out of range, or both iterations and minutes are given; the message names the option.</exception>
    public void Validate()
    {
        if (Iterations is long i && i < 1) throw new ArgumentException($"--iterations {i}: must be at least 1.");
        if (MinutesPerCell is double m && !(m > 0 && double.IsFinite(m))) throw new ArgumentException($"--minutes-per-cell {m}: must be a positive number.");
        if (Iterations != null && MinutesPerCell != null) throw new ArgumentException("--iterations and --minutes-per-cell: give one of them (the minutes are turned into iterations).");
        if (Tables.Count == 0) throw new ArgumentException("--cells: give one or more of a, b, c, d.");
        Scenes.Validate();
    }

    /// <summary>The trainer's options of every cell for <paramref name="iterations"/>: the recipe's schedule for that length, this
    /// seed, 4 checkpoints per cell (only at the end of a quick one) and 100 logged steps (the loss curves of table c).</summary>
    public TrainingOptions TrainingOptions(long iterations) => BaseRecipe.TrainingFor(iterations) with
    {
        Seed = Seed, CheckpointEvery = Quick ? iterations : Math.Max(50, iterations / 4), LogEvery = Math.Max(1, iterations / 100),
    };

    private static readonly JsonSerializerOptions Json = new() { Converters = { new JsonStringEnumConverter() } };

    /// <summary>
    /// Everything that decides what <paramref name="cell"/> learns, resolved: the data (scene counts, size, seed), the backbone
    /// weights, the batch size and augmentation, the model options (<see cref="Modeling.RetinaNetOptions"/>, with the cell's knobs)
    /// and the trainer's options for <paramref name="iterations"/>. Stored in the cell's folder and result, compared on a re-run
    /// (<see cref="Differences"/>). Two cells' configurations differ only in the knobs of <see cref="AblationCell"/>.
    /// </summary>
    /// <param name="cell">The cell.</param>
    /// <param name="iterations">Iterations per cell.</param>
    /// <param name="numClasses">Classes of the scenes (10).</param>
    public JsonObject Configuration(AblationCell cell, long iterations, int numClasses)
    {
        ArgumentNullException.ThrowIfNull(cell);
        var recipe = cell.Apply(BaseRecipe);
        return new JsonObject
        {
            ["data"] = new JsonObject
            {
                ["scenes"] = "fashion-mnist", ["quick"] = Quick, ["train_images"] = TrainImages, ["val_images"] = ValImages, ["size"] = Size, ["seed"] = Seed,
            },
            ["backbone_weights"] = recipe.BackboneWeights.Kind == BackboneWeightsKind.ImageNet ? BackboneWeights.ImageNetName : recipe.BackboneWeights.Kind.ToString(),
            ["batch_size"] = recipe.BatchSize,
            ["augmentation"] = JsonSerializer.SerializeToNode(recipe.Augmentation, Json),
            ["model"] = JsonNode.Parse(recipe.ModelOptions(numClasses).ToJson()),
            ["training"] = JsonSerializer.SerializeToNode(TrainingOptions(iterations), Json),
        };
    }

    /// <summary>
    /// The leaf paths where two configurations differ ("model.Alpha", "training.Iterations", "model.AnchorSizes"), sorted; arrays
    /// count as one leaf. Empty when they are equal.
    /// </summary>
    public static IReadOnlyList<string> Differences(JsonNode? a, JsonNode? b)
    {
        var diffs = new SortedSet<string>(StringComparer.Ordinal);
        void Walk(JsonNode? x, JsonNode? y, string path)
        {
            if (x is JsonObject ox && y is JsonObject oy)
            {
                foreach (var key in ox.Select(p => p.Key).Union(oy.Select(p => p.Key)))
                    Walk(ox[key], oy[key], path.Length == 0 ? key : path + "." + key);
                return;
            }
            if (!JsonNode.DeepEquals(x, y)) diffs.Add(path);
        }
        Walk(a, b, "");
        return [.. diffs];
    }
}
