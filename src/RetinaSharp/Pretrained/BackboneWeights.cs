// Reference: the paper, section 5 ("ResNet-50-FPN and ResNet-101-FPN backbones ... pre-trained on ImageNet1k", batch
// norm frozen) and torchvision 0.14 detection models (weights_backbone: FrozenBatchNorm2d with the checkpoint's
// statistics, trainable_backbone_layers = 3; without weights: BatchNorm2d and all 5 layers trainable).
using RetinaSharp.IO;
using RetinaSharp.Modeling;

namespace RetinaSharp.Pretrained;

/// <summary>Where the backbone's starting weights come from.</summary>
public enum BackboneWeightsKind
{
    /// <summary>Random (torchvision's Kaiming initialisation): train everything, with trainable normalisation.</summary>
    Random,
    /// <summary>A torchvision ResNet classification checkpoint (.pth), see <see cref="TorchvisionResNetCheckpoint"/>.</summary>
    TorchvisionFile,
    /// <summary>ML.NET's ImageNet ResNet-18 from NuGet, see <see cref="MlNetResNet18"/>.</summary>
    ImageNet,
}

/// <summary>
/// The backbone initialisation of a RetinaNet and the rules that go with it: a pretrained backbone (a file or
/// <c>imagenet</c>) defaults to frozen batch norm with the checkpoint's statistics and 3 trainable stages (the paper); a
/// random one defaults to trainable batch norm and all 5 stages trainable, and any setting that would keep random
/// weights frozen is refused.
/// </summary>
public sealed record BackboneWeights
{
    /// <summary>The word that selects <see cref="BackboneWeightsKind.ImageNet"/> (<c>--backbone-weights imagenet</c>).</summary>
    public const string ImageNetName = "imagenet";

    private BackboneWeights(BackboneWeightsKind kind, string? path) => (Kind, Path) = (kind, path);

    /// <summary>What kind of initialisation.</summary>
    public BackboneWeightsKind Kind { get; }

    /// <summary>The .pth file for <see cref="BackboneWeightsKind.TorchvisionFile"/>, else null.</summary>
    public string? Path { get; }

    /// <summary>True unless <see cref="BackboneWeightsKind.Random"/>.</summary>
    public bool IsPretrained => Kind != BackboneWeightsKind.Random;

    /// <summary>Random initialisation.</summary>
    public static BackboneWeights Random { get; } = new(BackboneWeightsKind.Random, null);

    /// <summary>ML.NET's ImageNet ResNet-18.</summary>
    public static BackboneWeights ImageNet { get; } = new(BackboneWeightsKind.ImageNet, null);

    /// <summary>A torchvision ResNet classification checkpoint.</summary>
    public static BackboneWeights FromFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return new(BackboneWeightsKind.TorchvisionFile, System.IO.Path.GetFullPath(path));
    }

    /// <summary>null or empty = <see cref="Random"/>, "imagenet" (any case) = <see cref="ImageNet"/>, else a file path.</summary>
    public static BackboneWeights Parse(string? spec) =>
        string.IsNullOrWhiteSpace(spec) ? Random
        : string.Equals(spec, ImageNetName, StringComparison.OrdinalIgnoreCase) ? ImageNet
        : FromFile(spec);

    /// <summary>
    /// Completes <paramref name="options"/> for this initialisation and checks the combination: the backbone depth
    /// (from the file's keys; ResNet18Cntk for ImageNet), the normalisation (frozen when pretrained, batch norm when
    /// random, unless given), the trainable stages (3 when pretrained, 5 when random, unless given) and, for ImageNet,
    /// the image mean and std the weights expect (<see cref="MlNetResNet18.ImageNormalization"/>).
    /// </summary>
    /// <param name="options">The other settings (their Backbone, BackboneNorm and TrainableBackboneLayers are replaced).</param>
    /// <param name="backbone">The depth asked for, or null to follow the weights (ResNet-50 when random).</param>
    /// <param name="norm">The normalisation asked for, or null for the default of this initialisation.</param>
    /// <param name="trainableLayers">Trainable stages asked for (0..5), or null for the default.</param>
    /// <exception cref="ArgumentException">A refused combination; the message says what to pass instead (with the
    /// <c>retina train</c> option names).</exception>
    /// <exception cref="DataFormatException">The file is not a torchvision ResNet checkpoint.</exception>
    /// <exception cref="FileNotFoundException">The file (or, for ImageNet, the package's files beside the program) is missing.</exception>
    public RetinaNetOptions Configure(RetinaNetOptions options, ResNetDepth? backbone = null, BackboneNormKind? norm = null, int? trainableLayers = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ResNetDepth depth;
        switch (Kind)
        {
            case BackboneWeightsKind.TorchvisionFile:
                var sd = TorchvisionResNetCheckpoint.ReadStateDict(Path!);
                try { depth = TorchvisionResNetCheckpoint.Depth(Path!, sd); }
                finally { foreach (var t in sd.Values) t.Dispose(); }
                if (backbone is { } asked && asked != depth)
                    throw new ArgumentException($"--backbone {Name(asked)}: the weights in {Path} are a {Name(depth)}; drop --backbone or pass --backbone {Name(depth)}.");
                break;
            case BackboneWeightsKind.ImageNet:
                if (backbone is { } a && a is not (ResNetDepth.ResNet18 or ResNetDepth.ResNet18Cntk))
                    throw new ArgumentException($"--backbone {Name(a)} with --backbone-weights imagenet: the ImageNet weights that come with RetinaSharp are a ResNet-18 ({MlNetResNet18.Package}); " +
                        $"pass --backbone resnet18 (or no --backbone), or give a torchvision {Name(a)} checkpoint with --backbone-weights FILE.pth.");
                depth = ResNetDepth.ResNet18Cntk;
                break;
            default:
                depth = backbone ?? options.Backbone;
                break;
        }
        var n = norm ?? (IsPretrained ? BackboneNormKind.Frozen : BackboneNormKind.BatchNorm);
        int layers = trainableLayers ?? (IsPretrained ? 3 : 5);
        if (IsPretrained && n == BackboneNormKind.GroupNorm)
            throw new ArgumentException("--backbone-norm group with pretrained backbone weights: the checkpoint's batch-norm statistics have no place in GroupNorm; " +
                "pass --backbone-norm frozen (the paper) or batch, or train from random weights (no --backbone-weights) with --backbone-norm group.");
        if (!IsPretrained && n == BackboneNormKind.Frozen)
            throw new ArgumentException("--backbone-norm frozen with a randomly initialised backbone: frozen batch norm would stay the identity and never learn; " +
                "pass --backbone-norm batch or group, or start from pretrained weights with --backbone-weights imagenet|FILE.pth.");
        if (!IsPretrained && layers < 5)
            throw new ArgumentException($"--trainable-layers {layers} with a randomly initialised backbone: {FrozenStages(layers)} would stay frozen at random values; " +
                "pass --trainable-layers 5, or start from pretrained weights with --backbone-weights imagenet|FILE.pth.");
        var o = options with { Backbone = depth, BackboneNorm = n, TrainableBackboneLayers = layers };
        if (Kind == BackboneWeightsKind.ImageNet)
        {
            var (mean, std) = MlNetResNet18.ImageNormalization();
            o = o with { ImageMean = mean, ImageStd = std };
        }
        o.Validate();
        return o;
    }

    /// <summary>Copies the weights into the model's backbone trunk (nothing for <see cref="Random"/>).</summary>
    /// <returns>One line saying how the backbone is initialised (for the start of a training run).</returns>
    /// <exception cref="ArgumentException">The model's trunk does not fit this initialisation (configure its options with <see cref="Configure"/>).</exception>
    /// <exception cref="DataFormatException">The file does not fit the trunk (keys, shapes or graph).</exception>
    public string LoadInto(RetinaNet model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var body = model.Backbone.Body;
        switch (Kind)
        {
            case BackboneWeightsKind.TorchvisionFile:
                var sd = TorchvisionResNetCheckpoint.ReadStateDict(Path!);
                try { TorchvisionResNetCheckpoint.CopyInto(Path!, body, sd); }
                finally { foreach (var t in sd.Values) t.Dispose(); }
                break;
            case BackboneWeightsKind.ImageNet:
                MlNetResNet18.CopyInto(body);
                break;
        }
        return Describe(model.Options);
    }

    /// <summary>The start-of-run line, e.g. "Backbone: ResNet-18 (ML.NET) from ImageNet weights (...), frozen batch norm, 3 of 5 stages trainable (layer2-layer4)".</summary>
    public string Describe(RetinaNetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        string source = Kind switch
        {
            BackboneWeightsKind.TorchvisionFile => $"weights from {Path}",
            BackboneWeightsKind.ImageNet => $"ImageNet weights from {MlNetResNet18.Package}",
            _ => "random weights (Kaiming normal)",
        };
        string norm = options.BackboneNorm switch
        {
            BackboneNormKind.Frozen => IsPretrained ? "frozen batch norm with the checkpoint's statistics" : "frozen batch norm",
            BackboneNormKind.BatchNorm => IsPretrained ? "trainable batch norm starting from the checkpoint's statistics" : "trainable batch norm",
            _ => "trainable GroupNorm (32 groups)",
        };
        return $"Backbone: {Name(options.Backbone)} from {source}, {norm}, {options.TrainableBackboneLayers} of 5 stages trainable ({TrainableStages(options.TrainableBackboneLayers)}).";
    }

    private static readonly string[] Stages = ["layer4", "layer3", "layer2", "layer1", "conv1"];

    private static string TrainableStages(int layers) => layers == 0 ? "none" : string.Join(", ", Stages.Take(layers).Reverse());

    private static string FrozenStages(int layers) => string.Join(" and ", Stages.Skip(layers).Reverse());

    /// <summary>The option spelling of a depth (resnet18 ...; ResNet18Cntk is ML.NET's resnet18).</summary>
    private static string Name(ResNetDepth d) => d == ResNetDepth.ResNet18Cntk ? "resnet18 (ML.NET ImageNet variant)" : d.ToString().ToLowerInvariant();
}
