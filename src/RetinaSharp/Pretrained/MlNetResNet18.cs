// Reference: the ONNX graph tools/DnnImageModels/ResNet18Onnx/ResNet18.onnx of ML.NET's NuGet package
// Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1 (MIT; a CNTK 2.6 export, opset 8) and its preprocessing graph
// ResNetPrepOnnx/ResNetPreprocess.onnx (RGB -> BGR, minus a 224x224 mean image, pixel values 0..255). Read here with
// OnnxSharp (generated Google.Protobuf classes of onnx.proto3), mapped node by node onto ResNetBody(ResNet18Cntk).
using Google.Protobuf;
using Onnx;
using RetinaSharp.IO;
using RetinaSharp.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Pretrained;

/// <summary>
/// The ImageNet-trained ResNet-18 that ML.NET ships on NuGet (<c>Microsoft.ML.DnnImageFeaturizer.ResNet18</c> 0.23.1):
/// its ONNX graph read into <see cref="ResNetBody"/> of depth <see cref="ResNetDepth.ResNet18Cntk"/>, which computes
/// exactly what the graph computes up to layer4 (22 convolutions, 22 batch norms, 9 residual additions, asymmetric
/// padding), for any input size where the graph's additions are defined (even sides at each stage; the detector's
/// size-divisible padding guarantees it). The package is restored at build time and its files copied beside the
/// program (<c>DnnImageModels/</c>); nothing is downloaded at run time.
/// </summary>
public static class MlNetResNet18
{
    /// <summary>The NuGet package the weights come from.</summary>
    public const string Package = "Microsoft.ML.DnnImageFeaturizer.ResNet18 0.23.1";

    /// <summary>The graph beside the program: <c>DnnImageModels/ResNet18Onnx/ResNet18.onnx</c> under <see cref="AppContext.BaseDirectory"/>.</summary>
    public static string DefaultModelPath => Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx");

    /// <summary>The preprocessing graph beside the program: <c>DnnImageModels/ResNetPrepOnnx/ResNetPreprocess.onnx</c>.</summary>
    public static string DefaultPreprocessPath => Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNetPrepOnnx", "ResNetPreprocess.onnx");

    /// <summary>
    /// The image normalisation these weights expect, in <see cref="RetinaNetOptions"/> terms (RGB in [0, 1]):
    /// mean = the per-channel average of the graph's 224x224 mean image / 255, std = 1/255 per channel, i.e.
    /// 255·x - mean_c. The graph subtracts a mean <em>image</em> at 224x224; a detector sees any size and pads, so we
    /// subtract its per-channel average instead (the image varies by about 5 of 255 around it).
    /// </summary>
    /// <param name="preprocessPath">ResNetPreprocess.onnx, or null for <see cref="DefaultPreprocessPath"/>.</param>
    /// <exception cref="FileNotFoundException">The file is missing (the package was not restored beside the program).</exception>
    /// <exception cref="DataFormatException">The graph has no 1x3xHxW float initialiser <c>MeanImage</c>.</exception>
    public static (double[] Mean, double[] Std) ImageNormalization(string? preprocessPath = null)
    {
        using var scope = NewDisposeScope();
        var mean = MeanImageBgr(preprocessPath); // (3, H, W) BGR, 0..255
        var perChannel = mean.mean([1L, 2L]).to(ScalarType.Float64).data<double>().ToArray();
        return ([perChannel[2] / 255, perChannel[1] / 255, perChannel[0] / 255], [1 / 255.0, 1 / 255.0, 1 / 255.0]);
    }

    /// <summary>The graph's mean image (3, 224, 224), channels in BGR order, pixel units 0..255 (float32).</summary>
    /// <exception cref="FileNotFoundException">The file is missing.</exception>
    /// <exception cref="DataFormatException">No 1x3xHxW float initialiser named <c>MeanImage</c>.</exception>
    public static Tensor MeanImageBgr(string? preprocessPath = null)
    {
        string path = preprocessPath ?? DefaultPreprocessPath;
        var model = ReadModel(path);
        var t = model.Graph.Initializer.FirstOrDefault(i => i.Name == "MeanImage");
        if (t is null || t.Dims.Count != 4 || t.Dims[0] != 1 || t.Dims[1] != 3)
            throw new DataFormatException(path, null, "MeanImage", "no 1x3xHxW initialiser named MeanImage: not ML.NET's ResNetPreprocess.onnx");
        return ToTensor(path, t).squeeze(0);
    }

    /// <summary>
    /// Copies the graph's weights into <paramref name="body"/>: each Conv weight (conv1's input channels reordered from
    /// BGR to RGB, so the body takes RGB like every other backbone here) and each BatchNormalization's scale, bias, mean
    /// and variance into the body's frozen or trainable batch norm. The graph is checked first: op counts, kernel
    /// shapes, strides and pads must be those <see cref="ResNetDepth.ResNet18Cntk"/> computes.
    /// </summary>
    /// <param name="body">A trunk of depth <see cref="ResNetDepth.ResNet18Cntk"/> with frozen or trainable batch norm.</param>
    /// <param name="modelPath">ResNet18.onnx, or null for <see cref="DefaultModelPath"/>.</param>
    /// <returns>The number of tensors copied (22 convolutions + 4 × 22 batch-norm tensors = 110).</returns>
    /// <exception cref="ArgumentException"><paramref name="body"/> is not a ResNet18Cntk, or has GroupNorm (no statistics to hold the graph's).</exception>
    /// <exception cref="FileNotFoundException">The file is missing.</exception>
    /// <exception cref="DataFormatException">The graph is not the expected one (the message names the node and what differs).</exception>
    public static int CopyInto(ResNetBody body, string? modelPath = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (body.Depth != ResNetDepth.ResNet18Cntk)
            throw new ArgumentException($"ML.NET's ResNet-18 needs a ResNet18Cntk trunk (layer4 has 3 blocks), not {body.Depth}", nameof(body));
        if (body.Norm == BackboneNormKind.GroupNorm)
            throw new ArgumentException("ML.NET's ResNet-18 has batch norm: load it into a trunk with Frozen or BatchNorm normalisation, not GroupNorm", nameof(body));
        string path = modelPath ?? DefaultModelPath;
        var graph = ReadModel(path).Graph;
        var inits = graph.Initializer.ToDictionary(i => i.Name);
        var nodes = graph.Node.ToList();
        int Count(string op) => nodes.Count(n => n.OpType == op);
        if (Count("Conv") != 22 || Count("BatchNormalization") != 22 || Count("Add") != 9 || Count("MaxPool") != 1)
            throw new DataFormatException(path, null, "graph",
                $"expected 22 Conv, 22 BatchNormalization, 9 Add and 1 MaxPool (ML.NET's ResNet-18), found {Count("Conv")}, {Count("BatchNormalization")}, {Count("Add")}, {Count("MaxPool")}");
        var pool = nodes.Single(n => n.OpType == "MaxPool");
        ExpectInts(path, pool, "pads", [1, 1, 0, 0]);
        ExpectInts(path, pool, "strides", [2, 2]);
        ExpectInts(path, pool, "kernel_shape", [3, 3]);

        // Graph order runs a block's shortcut (1x1) before its main path; ours lists the main path first. Pair them per kind.
        var convs = nodes.Where(n => n.OpType == "Conv").ToList();
        var graphMain = new Queue<NodeProto>(convs.Where(n => Ints(n, "kernel_shape")[0] != 1));
        var graphShortcut = new Queue<NodeProto>(convs.Where(n => Ints(n, "kernel_shape")[0] == 1));
        var own = body.state_dict();
        int copied = 0;
        using var noGrad = no_grad();
        foreach (var (convName, normName, downsample) in body.ConvolutionNames())
        {
            var queue = downsample ? graphShortcut : graphMain;
            if (queue.Count == 0) throw new DataFormatException(path, null, convName, "the graph has fewer convolutions than ResNet18Cntk");
            var conv = queue.Dequeue();
            var target = own[convName + ".weight"];
            var w = ToTensor(path, Initializer(path, inits, conv, 1));
            if (!w.shape.SequenceEqual(target.shape))
                throw new DataFormatException(path, null, conv.Name, $"weight [{string.Join(", ", w.shape)}] where {convName} has [{string.Join(", ", target.shape)}]");
            long stride = Stride(convName, downsample);
            ExpectInts(path, conv, "strides", [stride, stride]);
            long[] pads = target.shape[2] switch
            {
                7 => [3, 3, 2, 2],
                1 => [0, 0, 0, 0],
                _ => stride == 2 ? [1, 1, 0, 0] : [1, 1, 1, 1],
            };
            ExpectInts(path, conv, "pads", pads);
            if (convName == "conv1") w = w.index_select(1, tensor(new long[] { 2, 1, 0 })); // BGR -> RGB input channels
            target.copy_(w);
            copied++;

            var bn = nodes.SingleOrDefault(n => n.OpType == "BatchNormalization" && n.Input[0] == conv.Output[0])
                ?? throw new DataFormatException(path, null, conv.Name, "is not followed by a BatchNormalization");
            var eps = bn.Attribute.FirstOrDefault(a => a.Name == "epsilon")?.F ?? 1e-5f;
            if (Math.Abs(eps - BackboneNorm.Eps) > 1e-9)
                throw new DataFormatException(path, null, bn.Name, $"epsilon {eps} differs from the backbone's {BackboneNorm.Eps}");
            string[] fields = ["weight", "bias", "running_mean", "running_var"];
            for (int i = 0; i < 4; i++)
            {
                var v = ToTensor(path, Initializer(path, inits, bn, i + 1));
                var dst = own[$"{normName}.{fields[i]}"];
                if (!v.shape.SequenceEqual(dst.shape))
                    throw new DataFormatException(path, null, bn.Name, $"{fields[i]} [{string.Join(", ", v.shape)}] where {normName} has [{string.Join(", ", dst.shape)}]");
                dst.copy_(v);
                copied++;
            }
        }
        if (graphMain.Count + graphShortcut.Count > 0)
            throw new DataFormatException(path, null, "graph", $"{graphMain.Count + graphShortcut.Count} convolutions left over after filling ResNet18Cntk");
        return copied;
    }

    /// <summary>2 for the stem, the shortcuts and the first convolution of layer2..layer4 (torchvision v1 places the stride there too).</summary>
    private static long Stride(string convName, bool downsample) =>
        convName == "conv1" || downsample || convName is "layer2.0.conv1" or "layer3.0.conv1" or "layer4.0.conv1" ? 2 : 1;

    private static ModelProto ReadModel(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException(
                $"'{path}' is missing: it comes from the NuGet package {Package}, copied beside the program at build time (rebuild the project that references RetinaSharp)", path);
        try
        {
            using var fs = File.OpenRead(path);
            return ModelProto.Parser.ParseFrom(fs);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new DataFormatException(path, null, null, $"not a readable ONNX model: {e.Message}", e);
        }
    }

    private static TensorProto Initializer(string path, Dictionary<string, TensorProto> inits, NodeProto node, int input) =>
        node.Input.Count > input && inits.TryGetValue(node.Input[input], out var t) ? t
            : throw new DataFormatException(path, null, node.Name, $"input {input} of {node.OpType} is not a stored tensor");

    private static long[] Ints(NodeProto node, string name) => node.Attribute.FirstOrDefault(a => a.Name == name)?.Ints.ToArray() ?? [];

    private static void ExpectInts(string path, NodeProto node, string name, long[] expected)
    {
        var got = Ints(node, name);
        if (!got.SequenceEqual(expected))
            throw new DataFormatException(path, null, node.Name, $"{node.OpType} {name} [{string.Join(", ", got)}], expected [{string.Join(", ", expected)}]");
    }

    /// <summary>A float32 initialiser as a tensor (from float_data or little-endian raw_data).</summary>
    private static Tensor ToTensor(string path, TensorProto t)
    {
        if (t.DataType != (int)TensorProto.Types.DataType.Float)
            throw new DataFormatException(path, null, t.Name, $"data type {t.DataType}, expected float (1)");
        long n = t.Dims.Aggregate(1L, (a, d) => a * d);
        float[] values;
        if (t.FloatData.Count > 0) values = [.. t.FloatData];
        else
        {
            var raw = t.RawData.Span;
            if (raw.Length != n * 4) throw new DataFormatException(path, null, t.Name, $"{raw.Length} raw bytes for {n} floats");
            values = new float[n];
            for (long i = 0; i < n; i++) values[i] = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(raw.Slice((int)i * 4, 4));
        }
        if (values.LongLength != n) throw new DataFormatException(path, null, t.Name, $"{values.LongLength} values for dims [{string.Join(", ", t.Dims)}]");
        return tensor(values, [.. t.Dims]);
    }
}
