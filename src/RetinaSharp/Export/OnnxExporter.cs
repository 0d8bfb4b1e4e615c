// Reference: the ONNX operator specification (opsets 11-17) for the graph, and our own inference path as the
// behaviour to reproduce: DetectionTransform (normalise, bilinear resize by min(MinSize/short, MaxSize/long) in float32,
// zero padding to SizeDivisible), ResNetBody / FeaturePyramidNetwork / RetinaNetHead, AnchorGenerator, BoxCoder
// (scale clamp ln(1000/16)), RetinaNetPostProcessor (score threshold, top-k per level, clip, class-aware NMS,
// best DetectionsPerImage) and the box map back to the input image (torchvision GeneralizedRCNNTransform.postprocess).
using System.Text.Json;
using Google.Protobuf;
using RetinaSharp.Data;
using RetinaSharp.Export.Proto;
using RetinaSharp.Geometry;
using RetinaSharp.IO;
using RetinaSharp.Modeling;
using RetinaSharp.Quantization;
using TorchSharp.Modules;
using static RetinaSharp.Export.OnnxGraphBuilder;
using static TorchSharp.torch;
using DataType = RetinaSharp.Export.Proto.TensorProto.Types.DataType;

namespace RetinaSharp.Export;

/// <summary>
/// Writes a whole <see cref="RetinaNet"/> detector as one ONNX graph: input <c>image</c> (3, H, W) float32 RGB in [0, 1];
/// normalisation, resize and padding as <see cref="DetectionTransform"/>; the backbone with batch norm folded into its
/// convolutions; FPN; both subnets on P3-P7; anchors; box decoding with the scale clamp; score threshold and top-k per
/// level; clipping; class-aware NMS (ONNX <c>NonMaxSuppression</c>); the best <see cref="RetinaNetOptions.DetectionsPerImage"/>;
/// boxes mapped back to the input pixels. Outputs <c>boxes</c> (N, 4) XYXY pixels, <c>scores</c> (N), <c>labels</c> (N) int64,
/// by decreasing score. Weights are initializers; nodes are named by stage (<c>preprocess/</c>, <c>backbone/layer2.0/conv1</c>,
/// <c>fpn/</c>, <c>head/classification/p3/</c>, <c>anchors/</c>, <c>postprocess/</c>) so the graph reads in Netron. Class names,
/// the model options and the input size are in the metadata (<see cref="OnnxDetectorMetadata"/>).
/// </summary>
public static class OnnxExporter
{
    /// <summary>Writes the ONNX file of <paramref name="model"/> to <paramref name="path"/> (atomically).</summary>
    /// <param name="model">The detector; its current <see cref="RetinaNet.Options"/> (thresholds, sizes) go into the graph.</param>
    /// <param name="path">Destination .onnx file.</param>
    /// <param name="options">Opset, size, class names; null = opset 17, dynamic size, no names.</param>
    /// <exception cref="ArgumentException">An export option is invalid, or the model is in a state the graph cannot
    /// express (the message names the option; see <see cref="CheckExpressible"/>).</exception>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public static void Export(RetinaNet model, string path, OnnxExportOptions? options = null)
    {
        var proto = Build(model, options ?? new OnnxExportOptions());
        AtomicFile.Write(path, s => proto.WriteTo(s));
    }

    /// <summary>The ONNX model of <paramref name="model"/> as bytes (see <see cref="Export"/>).</summary>
    /// <exception cref="ArgumentException">As <see cref="Export"/>.</exception>
    public static byte[] ToBytes(RetinaNet model, OnnxExportOptions? options = null) => Build(model, options ?? new OnnxExportOptions()).ToByteArray();

    /// <summary>
    /// Refuses a model whose inference the graph cannot reproduce: one prepared for bfloat16 inference
    /// (<c>PrepareForInference(bfloat16: true)</c> rounds the FPN and head weights; the graph is float32), and a
    /// <see cref="RetinaNetOptions.NumClasses"/> or per-level size too large for the int64/float32 index arithmetic of the graph.
    /// </summary>
    /// <exception cref="ArgumentException">The message names the option and what to do instead.</exception>
    public static void CheckExpressible(RetinaNet model, OnnxExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (model.InferenceDtype is { } d)
            throw new ArgumentException($"PrepareForInference(bfloat16: true): the model runs in {d}, which the exporter cannot express " +
                                        "(its graphs are float32 and the rounded weights cannot be recovered); export a model loaded from its file without bfloat16", "bfloat16");
        if (options.Categories is { } c && c.Count != model.Options.NumClasses)
            throw new ArgumentException($"OnnxExportOptions.Categories has {c.Count} entries but the model has {model.Options.NumClasses} classes", nameof(options));
        var o = model.Options;
        if (o.AnchorsPerLocation * (long)o.NumClasses > int.MaxValue)
            throw new ArgumentException($"RetinaNetOptions.NumClasses = {o.NumClasses}: {o.AnchorsPerLocation} anchors x {o.NumClasses} classes per location is beyond the exporter's limit", nameof(o.NumClasses));
    }

    /// <summary>
    /// The float32 graph of <paramref name="model"/> (dynamic size) that also outputs the value of every quantisation point,
    /// and the point → output name pairs: what <see cref="Int8Calibrator"/> runs to measure the ranges.
    /// </summary>
    internal static (byte[] Model, IReadOnlyList<(string Point, string Output)> Points) CalibrationGraph(RetinaNet model, int opset = OnnxExportOptions.MaxOpset)
    {
        var options = new OnnxExportOptions { Opset = opset, CalibrationOutputs = true };
        var proto = Build(model, options, out var points);
        return (proto.ToByteArray(), points);
    }

    private static ModelProto Build(RetinaNet model, OnnxExportOptions options) => Build(model, options, out _);

    private static ModelProto Build(RetinaNet model, OnnxExportOptions options, out IReadOnlyList<(string Point, string Output)> points)
    {
        CheckExpressible(model, options);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var g = new OnnxGraphBuilder("retinanet", options.Opset);
        var w = new GraphWriter(g, model, options);
        w.Write();
        points = w.CalibrationPoints;

        var o = model.Options;
        var model_ = new ModelProto
        {
            IrVersion = options.Opset switch { 11 => 6, <= 14 => 7, _ => 8 },
            ProducerName = "RetinaSharp",
            ProducerVersion = typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "",
            Domain = "retinasharp",
            ModelVersion = 1,
            DocString = $"RetinaNet ({o.Backbone}-FPN, {o.NumClasses} classes) exported by RetinaSharp: input image (3, H, W) float32 RGB in [0, 1]; " +
                        "outputs boxes (N, 4) XYXY input pixels, scores (N), labels (N) int64 class indices, by decreasing score.",
            Graph = g.Graph,
        };
        model_.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = options.Opset });
        var categories = options.Categories ?? [.. Enumerable.Range(0, o.NumClasses).Select(i => new CocoCategory(i, $"class {i}"))];
        var classes = JsonSerializer.Serialize(categories.Select(c => new { id = c.Id, name = c.Name }));
        void Meta(string k, string v) => model_.MetadataProps.Add(new StringStringEntryProto { Key = k, Value = v });
        Meta(OnnxDetectorMetadata.FormatKey, OnnxDetectorMetadata.FormatValue);
        Meta(OnnxDetectorMetadata.ClassesKey, classes);
        Meta(OnnxDetectorMetadata.OptionsKey, o.ToJson());
        Meta(OnnxDetectorMetadata.InputSizeKey, options.FixedSize is { } s ? $"{s.Height}x{s.Width}" : "dynamic");
        Meta(OnnxDetectorMetadata.PrecisionKey, options.Int8?.ToString() ?? "float32");
        return model_;
    }

    /// <summary>Writes the nodes of one model into a graph builder, stage by stage.</summary>
    private sealed class GraphWriter(OnnxGraphBuilder g, RetinaNet model, OnnxExportOptions options)
    {
        private readonly RetinaNetOptions _o = model.Options;
        private readonly bool _dynamic = options.FixedSize is null;
        private readonly Dictionary<object, (string W, string? B)> _convWeights = new(ReferenceEqualityComparer.Instance);
        private readonly Dictionary<object, QuantizedWeights> _int8Weights = new(ReferenceEqualityComparer.Instance);
        private readonly Dictionary<string, (float Scale, byte ZeroPoint)> _quantized = new(StringComparer.Ordinal);   // DequantizeLinear output → its parameters
        private readonly List<(string Point, string Output)> _calibration = [];

        /// <summary>The quantisation points and their float32 values, in graph order (filled with CalibrationOutputs).</summary>
        public IReadOnlyList<(string Point, string Output)> CalibrationPoints => _calibration;

        // Sizes: int64 [1] values in the dynamic graph; known numbers in the fixed one.
        private (long H, long W) _fixedInput, _fixedResized, _fixedPadded;
        private string _inH = "", _inW = "", _resH = "", _resW = "", _padH = "", _padW = "";

        public void Write()
        {
            var image = OnnxDetectorMetadata.ImageInput;
            if (options.FixedSize is { } fs)
            {
                g.Input(image, DataType.Float, 3, fs.Height, fs.Width);
                _fixedInput = (fs.Height, fs.Width);
                _fixedResized = model.Transform.ResizedSize(fs.Height, fs.Width);
                long div = _o.SizeDivisible;
                _fixedPadded = ((_fixedResized.H + div - 1) / div * div, (_fixedResized.W + div - 1) / div * div);
            }
            else g.Input(image, DataType.Float, 3, "height", "width");

            var batch = Preprocess(image);
            var (c3, c4, c5) = Backbone(batch);
            var p = Fpn(c3, c4, c5);
            var cls = new string[5];
            var box = new string[5];
            for (int l = 0; l < 5; l++)
            {
                cls[l] = Subnet(model.Head.Classification, $"head/classification/p{l + 3}", p[l]);
                box[l] = Subnet(model.Head.Regression, $"head/regression/p{l + 3}", p[l]);
            }
            var anchors = Anchors(p);
            var (boxes, scores, labels) = Postprocess(cls, box, anchors);
            g.Op("Identity", OnnxDetectorMetadata.BoxesOutput, boxes);
            g.Op("Identity", OnnxDetectorMetadata.ScoresOutput, scores);
            g.Op("Identity", OnnxDetectorMetadata.LabelsOutput, labels);
            g.Output(OnnxDetectorMetadata.BoxesOutput, DataType.Float, "detections", 4);
            g.Output(OnnxDetectorMetadata.ScoresOutput, DataType.Float, "detections");
            g.Output(OnnxDetectorMetadata.LabelsOutput, DataType.Int64, "detections");
            foreach (var (_, value) in _calibration) g.OutputAnyShape(value, DataType.Float);
            if (options.HeadOutputs)
            {
                g.Node("Concat", OnnxDetectorMetadata.ClassLogitsOutput, cls, 1, Int("axis", 0));
                g.Node("Concat", OnnxDetectorMetadata.BoxDeltasOutput, box, 1, Int("axis", 0));
                g.Output(OnnxDetectorMetadata.ClassLogitsOutput, DataType.Float, "anchors", _o.NumClasses);
                g.Output(OnnxDetectorMetadata.BoxDeltasOutput, DataType.Float, "anchors", 4);
            }
        }

        // ---- preprocess: DetectionTransform.Preprocess for one image -------------------------------------------------

        private string Preprocess(string image)
        {
            const string S = "preprocess";
            var mean = g.Floats($"{S}.image_mean", [.. _o.ImageMean.Select(v => (float)v)], 3, 1, 1);
            var std = g.Floats($"{S}.image_std", [.. _o.ImageStd.Select(v => (float)v)], 3, 1, 1);
            var x = g.Op("Sub", $"{S}/normalize/sub_mean", image, mean);
            x = g.Op("Div", $"{S}/normalize/div_std", x, std);
            x = g.Unsqueeze($"{S}/batch", x, 0);                                    // (1, 3, H, W)
            string sizes, pads;
            if (_dynamic)
            {
                var shape = g.Op("Shape", $"{S}/size/shape", image);                // [3, H, W]
                _inH = g.Slice($"{S}/size/height", shape, 0, 1, 2);
                _inW = g.Slice($"{S}/size/width", shape, 0, 2, 3);
                // scale = min(MinSize / min(h, w), MaxSize / max(h, w)) in float32, each quotient float32(1 / side) * size (torchvision's
                // tensor arithmetic), then side = max(1, floor(side * scale)) in float64, as DetectionTransform.ResizedSize
                // (floor = truncation of a positive value by Cast).
                var hd = g.Cast($"{S}/size/height_f64", _inH, DataType.Double);
                var wd = g.Cast($"{S}/size/width_f64", _inW, DataType.Double);
                var hf = g.Cast($"{S}/size/height_f32", _inH, DataType.Float);
                var wf = g.Cast($"{S}/size/width_f32", _inW, DataType.Float);
                var shortSide = g.Op("Min", $"{S}/size/short_side", hf, wf);
                var longSide = g.Op("Max", $"{S}/size/long_side", hf, wf);
                var one = g.FloatScalar(1);
                var scale32 = g.Op("Min", $"{S}/size/scale_f32",
                    g.Op("Mul", $"{S}/size/min_size_ratio", g.Op("Div", $"{S}/size/inv_short_side", one, shortSide), g.FloatScalar(_o.MinSize)),
                    g.Op("Mul", $"{S}/size/max_size_ratio", g.Op("Div", $"{S}/size/inv_long_side", one, longSide), g.FloatScalar(_o.MaxSize)));
                var scale = g.Cast($"{S}/size/scale", scale32, DataType.Double);
                string Side(string name, string v) => g.Cast($"{S}/size/{name}", g.Op("Max", $"{S}/size/{name}_at_least_1",
                    g.Op("Mul", $"{S}/size/{name}_scaled", v, scale), g.DoubleScalar(1)), DataType.Int64);
                _resH = Side("resized_height", hd);
                _resW = Side("resized_width", wd);
                sizes = g.Op("Concat", $"{S}/resize/sizes", [g.LongVector(1, 3), _resH, _resW], Int("axis", 0));
                var div = g.LongScalar(_o.SizeDivisible);
                var divMinus1 = g.LongScalar(_o.SizeDivisible - 1);
                string Padded(string name, string v) => g.Op("Mul", $"{S}/pad/{name}", g.Op("Div", $"{S}/pad/{name}_blocks", g.Op("Add", $"{S}/pad/{name}_up", v, divMinus1), div), div);
                _padH = Padded("padded_height", _resH);
                _padW = Padded("padded_width", _resW);
                pads = g.Op("Concat", $"{S}/pad/pads", [g.LongVector(0, 0, 0, 0, 0, 0),
                    g.Op("Sub", $"{S}/pad/bottom", _padH, _resH), g.Op("Sub", $"{S}/pad/right", _padW, _resW)], Int("axis", 0));
            }
            else
            {
                sizes = _fixedResized != _fixedInput ? g.LongVector(1, 3, _fixedResized.H, _fixedResized.W) : "";
                pads = _fixedPadded != _fixedResized ? g.LongVector(0, 0, 0, 0, 0, 0, _fixedPadded.H - _fixedResized.H, _fixedPadded.W - _fixedResized.W) : "";
            }
            // Bilinear, align_corners=False (PyTorch's interpolate = ONNX pytorch_half_pixel), to the given size; a fixed-size
            // graph whose input is already at the resized size skips it (the identity exactly), as it skips a padding of nothing.
            if (_dynamic || _fixedResized != _fixedInput)
                x = g.Op("Resize", $"{S}/resize", [x, EmptyFloats("roi"), EmptyFloats("scales"), sizes],
                    Str("mode", "linear"), Str("coordinate_transformation_mode", "pytorch_half_pixel"));
            if (_dynamic || _fixedPadded != _fixedResized)
                x = g.Op("Pad", $"{S}/pad", [x, pads, g.FloatScalar(0)], Str("mode", "constant"));   // zeros right and bottom
            return Act(x, S);
        }

        // ---- int8: quantisation points and quantised convolutions -------------------------------------------------------

        /// <summary>
        /// A quantisation point: the float32 value <paramref name="value"/> as the next convolution (or residual addition) reads it.
        /// Float32 graph: the value itself. Calibration graph: the value, also made a graph output. Int8 graph: QuantizeLinear to
        /// uint8 with the calibrated range of <paramref name="point"/>, then DequantizeLinear (the QDQ pair ONNX Runtime fuses into
        /// its int8 kernels).
        /// </summary>
        private string Act(string value, string point, float? floor = null)
        {
            if (options.CalibrationOutputs) { _calibration.Add((point, value)); return value; }
            if (options.Int8 is not { } q) return value;
            var range = q[point];
            if (floor is { } f && range.Min < f) range = range with { Min = Math.Min(f, range.Max) };
            var (scale, zp) = range.ToUInt8();
            return QuantizeDequantize(value, point, scale, zp);
        }

        /// <summary>
        /// The lowest class logit the int8 graph represents: logit(ScoreThreshold) - 2. Every logit below it stands for a
        /// score under threshold / e² and is no candidate; saturating those at the floor changes no detection, and the
        /// uint8 steps then spend their resolution on the logits that are scored (demo model, 64 calibration scenes: AP 0.6079
        /// against 0.6071 without the floor and 0.6113 in float32; docs/benchmarks.md).
        /// Null for a threshold of 0 or less (every logit is a candidate).
        /// </summary>
        private float? ClassLogitFloor()
        {
            double t = _o.ScoreThreshold;
            return t is <= 0 or >= 1 ? null : (float)(Logit(t) - 2);
        }

        /// <summary>ln(p / (1 - p)): the logit whose sigmoid is <paramref name="p"/>, for 0 &lt; p &lt; 1.</summary>
        private static double Logit(double p) => Math.Log(p / (1 - p));

        /// <summary>A quantisation point with the parameters of <paramref name="like"/> (max-pool of a quantised value: the
        /// same range, so ONNX Runtime runs it on the uint8 values).</summary>
        private string ActLike(string value, string like, string point) =>
            _quantized.TryGetValue(like, out var p) ? QuantizeDequantize(value, point, p.Scale, p.ZeroPoint) : value;

        private string QuantizeDequantize(string value, string point, float scale, byte zeroPoint)
        {
            var key = point.Replace('/', '.');
            var s = g.Floats($"{key}.scale", [scale]);
            var z = g.UInt8s($"{key}.zero_point", [zeroPoint]);
            var dq = g.Op("DequantizeLinear", $"{point}/dequantize", g.Op("QuantizeLinear", $"{point}/quantize", value, s, z), s, z);
            _quantized[dq] = (scale, zeroPoint);
            return dq;
        }

        /// <summary>The int8 weights of one convolution: values, per-output-channel scales, and the float bias.</summary>
        private sealed record QuantizedWeights(string Values, string Scales, string ZeroPoints, float[] ScaleValues, float[]? Bias);

        /// <summary>
        /// An int8 convolution: DequantizeLinear of the int8 weights (symmetric per output channel: scale = max |w| / 127) and of the
        /// int32 bias (scale = input scale · weight scale), reading the quantised <paramref name="x"/>.
        /// </summary>
        private string QuantizedConv(string name, string key, object cacheKey, string x, Tensor weight, Tensor? bias, AttributeProto[] attributes)
        {
            if (!_quantized.TryGetValue(x, out var input))
                throw new InvalidOperationException($"internal: the input of {name} is not quantised");
            if (!_int8Weights.TryGetValue(cacheKey, out var qw))
            {
                var w = weight.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
                int outChannels = (int)weight.shape[0], per = w.Length / outChannels;
                var q = new sbyte[w.Length];
                var scales = new float[outChannels];
                for (int c = 0; c < outChannels; c++)
                {
                    var row = w.AsSpan(c * per, per);
                    float amax = 0;
                    foreach (var v in row) amax = MathF.Max(amax, MathF.Abs(v));
                    float sc = amax > 0 ? amax / 127f : 1f;
                    scales[c] = sc;
                    for (int i = 0; i < per; i++) q[c * per + i] = (sbyte)Math.Clamp(MathF.Round(row[i] / sc), -127, 127);
                }
                qw = new QuantizedWeights(g.Int8s($"{key}.weight_quantized", q, weight.shape), g.Floats($"{key}.weight_scale", scales, outChannels),
                    g.Int8s($"{key}.weight_zero_point", new sbyte[outChannels], outChannels), scales,
                    bias is null ? null : bias.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray());
                _int8Weights[cacheKey] = qw;
            }
            var inputs = new List<string> { x, g.Op("DequantizeLinear", $"{name}/weight_dequantize", [qw.Values, qw.Scales, qw.ZeroPoints], Int("axis", 0)) };
            if (qw.Bias is { } b)
            {
                int n = b.Length;
                var bs = new float[n];
                var bq = new int[n];
                for (int c = 0; c < n; c++)
                {
                    bs[c] = input.Scale * qw.ScaleValues[c];
                    bq[c] = (int)Math.Clamp(Math.Round((double)b[c] / bs[c], MidpointRounding.ToEven), int.MinValue, int.MaxValue);
                }
                inputs.Add(g.Op("DequantizeLinear", $"{name}/bias_dequantize",
                    [g.Int32s($"{key}.bias_quantized", bq, n), g.Floats($"{key}.bias_scale", bs, n), g.Int32s($"{key}.bias_zero_point", new int[n], n)], Int("axis", 0)));
            }
            return g.Op("Conv", name, [.. inputs], attributes);
        }

        private string? _emptyFloats;
        private string EmptyFloats(string what) => _emptyFloats ??= g.Floats("preprocess.resize_empty_" + what, [], 0);

        // ---- backbone: ResNetBody with every batch norm folded ---------------------------------------------------------

        private (string C3, string C4, string C5) Backbone(string x)
        {
            var body = model.Backbone.Body;
            var stem = Act(g.Op("Relu", "backbone/stem/relu", ConvBn("backbone/conv1", body.Stem, x)), "backbone/stem/relu");
            x = ActLike(g.Op("MaxPool", "backbone/stem/maxpool", [stem], Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1)),
                stem, "backbone/stem/maxpool");
            var outputs = new string[3];
            var stages = body.Stages;
            for (int s = 0; s < stages.Count; s++)
            {
                for (int b = 0; b < stages[s].Length; b++)
                {
                    string name = $"backbone/layer{s + 1}.{b}";
                    var block = stages[s][b];
                    var y = x;
                    for (int i = 0; i < block.Units.Count; i++)
                    {
                        y = ConvBn($"{name}/conv{i + 1}", block.Units[i], y);
                        y = i < block.Units.Count - 1 ? Act(g.Op("Relu", $"{name}/relu{i + 1}", y), $"{name}/relu{i + 1}") : Act(y, $"{name}/conv{i + 1}");
                    }
                    var identity = block.Shortcut is { } sc ? Act(ConvBn($"{name}/downsample", sc, x), $"{name}/downsample") : x;
                    x = Act(g.Op("Relu", $"{name}/relu", g.Op("Add", $"{name}/add", y, identity)), $"{name}/relu");
                }
                if (s > 0) outputs[s - 1] = x;
            }
            return (outputs[0], outputs[1], outputs[2]);
        }

        /// <summary>A convolution with its batch norm folded in (W·scale per output channel, bias = shift), as ConvBn.SetFolded.</summary>
        private string ConvBn(string name, ConvBn unit, string x)
        {
            using var scope = NewDisposeScope();
            var (scale, shift) = BackboneNorm.ScaleAndShift(unit.Bn);
            var weight = unit.Conv.weight!.detach().to(ScalarType.Float32) * scale.to(ScalarType.Float32).reshape(-1, 1, 1, 1);
            var key = name.Replace('/', '.');
            AttributeProto[] attributes = [Ints("kernel_shape", weight.shape[2], weight.shape[3]), Ints("strides", unit.Stride, unit.Stride),
                Ints("pads", unit.Padding, unit.Padding, unit.Padding, unit.Padding)];
            if (options.Int8 is not null) return QuantizedConv(name, key, unit, x, weight, shift, attributes);
            return g.Op("Conv", name, [x, g.Weight($"{key}.weight", weight), g.Weight($"{key}.bias", shift)], attributes);
        }

        /// <summary>A convolution with its own weights (shared by every call with the same module), square kernel k,
        /// padding (k - 1) / 2 as every FPN and head convolution of RetinaSharp.</summary>
        private string Conv(string name, string weightKey, Conv2d conv, string x, long stride = 1)
        {
            long k = conv.weight!.shape[2], pad = (k - 1) / 2;
            AttributeProto[] attributes = [Ints("kernel_shape", k, conv.weight.shape[3]), Ints("strides", stride, stride), Ints("pads", pad, pad, pad, pad)];
            if (options.Int8 is not null) return QuantizedConv(name, weightKey, conv, x, conv.weight, conv.bias, attributes);
            if (!_convWeights.TryGetValue(conv, out var names))
            {
                names = (g.Weight($"{weightKey}.weight", conv.weight), conv.bias is { } b ? g.Weight($"{weightKey}.bias", b) : null);
                _convWeights[conv] = names;
            }
            string[] inputs = names.B is null ? [x, names.W] : [x, names.W, names.B];
            return g.Op("Conv", name, inputs, attributes);
        }

        // ---- FPN: FeaturePyramidNetwork + LastLevelP6P7 -------------------------------------------------------------------

        private string[] Fpn(string c3, string c4, string c5)
        {
            var fpn = model.Backbone.Fpn;
            var c = new[] { c3, c4, c5 };
            var results = new string[5];
            var last = Act(Conv("fpn/inner_blocks.2", "backbone.fpn.inner_blocks.2.0", fpn.Lateral(2), c5), "fpn/inner_blocks.2");
            results[2] = Act(Conv("fpn/p5", "backbone.fpn.layer_blocks.2.0", fpn.Output(2), last), "fpn/p5");
            for (int i = 1; i >= 0; i--)
            {
                var lateral = Act(Conv($"fpn/inner_blocks.{i}", $"backbone.fpn.inner_blocks.{i}.0", fpn.Lateral(i), c[i]), $"fpn/inner_blocks.{i}");
                // Nearest upsampling to the lateral's size: PyTorch's "nearest" = ONNX asymmetric + floor.
                var size = g.Op("Shape", $"fpn/top_down_p{i + 3}/size", lateral);
                var topDown = g.Op("Resize", $"fpn/top_down_p{i + 3}/upsample", [last, EmptyFloats("roi"), EmptyFloats("scales"), size],
                    Str("mode", "nearest"), Str("coordinate_transformation_mode", "asymmetric"), Str("nearest_mode", "floor"));
                last = Act(g.Op("Add", $"fpn/top_down_p{i + 3}/add", lateral, topDown), $"fpn/top_down_p{i + 3}");
                results[i] = Act(Conv($"fpn/p{i + 3}", $"backbone.fpn.layer_blocks.{i}.0", fpn.Output(i), last), $"fpn/p{i + 3}");
            }
            var (fromC5, p6, p7) = fpn.Extra;
            results[3] = Act(Conv("fpn/p6", "backbone.fpn.extra_blocks.p6", p6, fromC5 ? c5 : results[2], stride: 2), "fpn/p6");
            results[4] = Act(Conv("fpn/p7", "backbone.fpn.extra_blocks.p7", p7, Act(g.Op("Relu", "fpn/p6_relu", results[3]), "fpn/p6_relu"), stride: 2), "fpn/p7");
            return results;
        }

        // ---- head: RetinaNetSubnet on one level --------------------------------------------------------------------------

        /// <summary>Four conv (+GroupNorm) + ReLU, the predictor, then (1, A·O, H, W) → (H·W·A, O) as RetinaNetSubnet.forward.</summary>
        private string Subnet(RetinaNetSubnet subnet, string name, string x)
        {
            string key = subnet == model.Head.Classification ? "head.classification_head" : "head.regression_head";
            var blocks = subnet.Blocks;
            for (int i = 0; i < blocks.Count; i++)
            {
                x = Conv($"{name}/conv{i}", $"{key}.conv.{i}.0", blocks[i].Conv, x);
                if (blocks[i].Norm is { } gn) x = GroupNorm($"{name}/norm{i}", $"{key}.conv.{i}.1", gn, Act(x, $"{name}/conv{i}"));
                x = Act(g.Op("Relu", $"{name}/relu{i}", x), $"{name}/relu{i}");
            }
            string predictor = subnet == model.Head.Classification ? "cls_logits" : "bbox_reg";
            x = Act(Conv($"{name}/{predictor}", $"{key}.{predictor}", subnet.Predictor, x), $"{name}/{predictor}",
                floor: subnet == model.Head.Classification ? ClassLogitFloor() : null);
            long outputs = subnet.OutputsPerAnchor, a = _o.AnchorsPerLocation;
            x = g.Op("Reshape", $"{name}/view", x, g.LongVector(1, a, outputs, -1));                  // (1, A, O, H·W)
            x = g.Op("Transpose", $"{name}/permute", [x], Ints("perm", 0, 3, 1, 2));                  // (1, H·W, A, O)
            return g.Op("Reshape", $"{name}/flatten", x, g.LongVector(-1, outputs));                  // (H·W·A, O)
        }

        /// <summary>GroupNorm(G) as InstanceNormalization over (1, G, C/G·H·W) followed by the per-channel affine.</summary>
        private string GroupNorm(string name, string key, GroupNorm gn, string x)
        {
            long channels = gn.weight!.shape[0], groups = gn.num_groups;
            if (!_convWeights.TryGetValue(gn, out var affine))
            {
                affine = (g.Weight($"{key}.weight", gn.weight.reshape(channels, 1, 1)), g.Weight($"{key}.bias", gn.bias!.reshape(channels, 1, 1)));
                _convWeights[gn] = affine;
            }
            var shape = g.Op("Shape", $"{name}/shape", x);
            var grouped = g.Op("Reshape", $"{name}/group", x, g.LongVector(0, groups, -1));
            var ones = g.Floats($"{key}.group_scale", [.. Enumerable.Repeat(1f, (int)groups)], groups);
            var zeros = g.Floats($"{key}.group_shift", new float[groups], groups);
            var normed = g.Op("InstanceNormalization", $"{name}/normalize", [grouped, ones, zeros], Float("epsilon", (float)gn.eps));
            var back = g.Op("Reshape", $"{name}/ungroup", normed, shape);
            return g.Op("Add", $"{name}/shift", g.Op("Mul", $"{name}/scale", back, affine.W), affine.B!);
        }

        // ---- anchors: AnchorGenerator.AnchorsPerLevel -----------------------------------------------------------------------

        private string[] Anchors(string[] features)
        {
            var result = new string[5];
            if (!_dynamic)
            {
                var sizes = RetinaNet.FeatureSizes(_fixedPadded);
                var levels = model.AnchorsPerLevel(_fixedPadded, sizes);
                for (int l = 0; l < 5; l++) result[l] = g.Weight($"anchors.p{l + 3}", levels[l]);
                return result;
            }
            var generator = new AnchorGenerator([.. _o.EffectiveAnchorSizes().Select(s => s.Select(v => (double)v).ToArray())], _o.AspectRatios);
            for (int l = 0; l < 5; l++)
            {
                string n = $"anchors/p{l + 3}";
                using var cellTensor = generator.CellAnchors(l);
                var cell = g.Weight($"anchors.p{l + 3}.cell", cellTensor.view(1, -1, 4));                  // (1, A, 4)
                var shape = g.Op("Shape", $"{n}/feature_shape", features[l]);                               // [1, C, H_l, W_l]
                var fh = g.Slice($"{n}/feature_height", shape, 0, 2, 3);
                var fw = g.Slice($"{n}/feature_width", shape, 0, 3, 4);
                var strideY = g.Op("Div", $"{n}/stride_y", _padH, fh);                                       // integer division
                var strideX = g.Op("Div", $"{n}/stride_x", _padW, fw);
                var ys = g.Op("Mul", $"{n}/shifts_y", g.Op("Range", $"{n}/rows", g.LongScalar(0), g.Squeeze($"{n}/height_scalar", fh, 0), g.LongScalar(1)), strideY);
                var xs = g.Op("Mul", $"{n}/shifts_x", g.Op("Range", $"{n}/columns", g.LongScalar(0), g.Squeeze($"{n}/width_scalar", fw, 0), g.LongScalar(1)), strideX);
                var grid = g.Op("Concat", $"{n}/grid_shape", [fh, fw], Int("axis", 0));
                var sy = g.Op("Reshape", $"{n}/sy", g.Op("Expand", $"{n}/sy_grid", g.Unsqueeze($"{n}/sy_column", ys, 1), grid), g.LongVector(-1, 1));
                var sx = g.Op("Reshape", $"{n}/sx", g.Op("Expand", $"{n}/sx_grid", g.Unsqueeze($"{n}/sx_row", xs, 0), grid), g.LongVector(-1, 1));
                var shifts = g.Cast($"{n}/shifts_f32", g.Op("Concat", $"{n}/shifts", [sx, sy, sx, sy], Int("axis", 1)), DataType.Float);   // (H·W, 4)
                var all = g.Op("Add", $"{n}/shift_cells", g.Op("Reshape", $"{n}/shifts_view", shifts, g.LongVector(-1, 1, 4)), cell);       // (H·W, A, 4)
                result[l] = g.Op("Reshape", $"{n}/flatten", all, g.LongVector(-1, 4));
            }
            return result;
        }

        // ---- postprocess: RetinaNetPostProcessor.Process + the map back to input pixels ------------------------------------

        private (string Boxes, string Scores, string Labels) Postprocess(string[] cls, string[] box, string[] anchors)
        {
            const string S = "postprocess";
            var deltas = new string[5];
            var anchorSel = new string[5];
            var scores = new string[5];
            var labels = new string[5];
            var k = g.LongScalar(_o.NumClasses);
            for (int l = 0; l < 5; l++)
            {
                string n = $"{S}/p{l + 3}";
                // sigmoid(logit) > threshold, as RetinaNetPostProcessor, without a sigmoid over all H·W·A·K logits: the anchors
                // whose best logit is just below logit(threshold) or above (sigmoid is increasing; 0.01 covers float32 rounding),
                // the sigmoid of their rows, then the exact comparison on those scores. Candidates come out in flat (anchor, class)
                // order, as a NonZero over all scores would give them.
                double t = _o.ScoreThreshold;
                float logitCut = t <= 0 ? float.NegativeInfinity : t >= 1 ? float.PositiveInfinity : (float)(Logit(t) - 0.01);
                var anchorBest = g.Op("ReduceMax", $"{n}/anchor_max_logit", [cls[l]], Ints("axes", 1), Int("keepdims", 0));            // (H·W·A)
                var near = g.Op("Reshape", $"{n}/near_anchors", g.Op("NonZero", $"{n}/anchor_gt_cut",
                    g.Op("Greater", $"{n}/logit_cut", anchorBest, g.FloatScalar(logitCut))), g.LongVector(-1));                   // (n)
                var s = g.Op("Sigmoid", $"{n}/sigmoid", g.Op("Gather", $"{n}/near_logits", [cls[l], near], Int("axis", 0)));  // (n, K)
                var above = g.Op("NonZero", $"{n}/above_threshold", g.Op("Greater", $"{n}/score_gt_threshold", s, g.FloatScalar((float)t)));   // (2, m)
                var row = g.Take($"{n}/above_row", above, 0, 0);
                var column = g.Take($"{n}/above_class", above, 1, 0);
                var candidateScores = g.Op("Gather", $"{n}/candidate_scores",
                    [g.Op("Reshape", $"{n}/scores_flat", s, g.LongVector(-1)), g.Op("Add", $"{n}/local_index", g.Op("Mul", $"{n}/local_row", row, k), column)], Int("axis", 0));
                var candidates = g.Op("Add", $"{n}/candidates", g.Op("Mul", $"{n}/anchor_offset", g.Op("Gather", $"{n}/candidate_anchor", [near, row], Int("axis", 0)), k), column);
                var topk = TopCount($"{n}/topk_count", candidateScores, _o.TopkCandidates);
                var top = g.Node("TopK", $"{n}/topk", [candidateScores, topk], 2, Int("axis", 0), Int("largest", 1), Int("sorted", 1));
                scores[l] = top[0];
                var flat = g.Op("Gather", $"{n}/topk_index", [candidates, top[1]], Int("axis", 0));
                var anchorIdx = g.Op("Div", $"{n}/anchor_index", flat, k);
                labels[l] = g.Op("Mod", $"{n}/label", flat, k);
                deltas[l] = g.Op("Gather", $"{n}/deltas", [box[l], anchorIdx], Int("axis", 0));
                anchorSel[l] = g.Op("Gather", $"{n}/anchors", [anchors[l], anchorIdx], Int("axis", 0));
            }
            var d = g.Op("Concat", $"{S}/deltas", deltas, Int("axis", 0));
            var a = g.Op("Concat", $"{S}/anchors", anchorSel, Int("axis", 0));
            var allScores = g.Op("Concat", $"{S}/scores", scores, Int("axis", 0));
            var allLabels = g.Op("Concat", $"{S}/labels", labels, Int("axis", 0));
            var boxes = Clip(Decode(d, a));

            // Class-aware NMS: one score row per class (-1 where the candidate has another label, below NMS's threshold).
            var classIds = g.Longs($"{S}.class_ids", [.. Enumerable.Range(0, _o.NumClasses).Select(i => (long)i)], _o.NumClasses, 1);
            var sameClass = g.Op("Equal", $"{S}/nms/class_mask", g.Unsqueeze($"{S}/nms/labels_row", allLabels, 0), classIds);   // (K, M)
            var classScores = g.Op("Where", $"{S}/nms/class_scores", sameClass, g.Unsqueeze($"{S}/nms/scores_row", allScores, 0), g.FloatScalar(-1));
            var selected = g.Op("NonMaxSuppression", $"{S}/nms",
                [g.Unsqueeze($"{S}/nms/boxes_batch", boxes, 0), g.Unsqueeze($"{S}/nms/scores_batch", classScores, 0),
                 g.LongVector(_o.DetectionsPerImage), g.Floats($"{S}.nms_iou_threshold", [(float)_o.NmsThreshold], 1), g.Floats($"{S}.nms_score_floor", [-0.5f], 1)],
                Int("center_point_box", 0));                                                                                 // (S, 3)
            var kept = g.Take($"{S}/nms/kept", selected, 2, 1);
            // Best DetectionsPerImage of the kept, by decreasing score, ties by lower candidate index (as NonMaxSuppression.Batched):
            // scatter the kept scores into a -1 vector over all candidates and take its top entries.
            var floor = g.Op("Expand", $"{S}/best/floor", g.FloatScalar(-1), g.Op("Shape", $"{S}/best/candidates", allScores));
            var ranked = g.Op("ScatterElements", $"{S}/best/kept_scores", [floor, kept, g.Op("Gather", $"{S}/best/kept_score", [allScores, kept], Int("axis", 0))], Int("axis", 0));
            var count = TopCount($"{S}/best/count", kept, _o.DetectionsPerImage);
            var best = g.Node("TopK", $"{S}/best/topk", [ranked, count], 2, Int("axis", 0), Int("largest", 1), Int("sorted", 1));
            var finalBoxes = g.Op("Gather", $"{S}/best/boxes", [boxes, best[1]], Int("axis", 0));
            var finalLabels = g.Op("Gather", $"{S}/best/labels", [allLabels, best[1]], Int("axis", 0));
            return (ToInputPixels(finalBoxes), best[0], finalLabels);
        }

        /// <summary>min(n, count of <paramref name="values"/>) as an int64 [1] for TopK.</summary>
        private string TopCount(string name, string values, long n) =>
            g.Op("ReduceMin", name, [g.Op("Concat", $"{name}/pair", [g.Op("Shape", $"{name}/available", values), g.LongVector(n)], Int("axis", 0))], Int("keepdims", 1));

        /// <summary>BoxCoder.Decode with weights (1, 1, 1, 1) and the default scale clamp, the same float operations in the same order.</summary>
        private string Decode(string deltas, string anchors)
        {
            const string S = "postprocess/decode";
            string A(int i) => g.Take($"{S}/anchor_{"x1,y1,x2,y2".Split(',')[i]}", anchors, i, 1);
            string D(int i) => g.Take($"{S}/delta_{"dx,dy,dw,dh".Split(',')[i]}", deltas, i, 1);
            var a0 = A(0); var a1 = A(1); var a2 = A(2); var a3 = A(3);
            var half = g.FloatScalar(0.5f);
            var aw = g.Op("Sub", $"{S}/anchor_width", a2, a0);
            var ah = g.Op("Sub", $"{S}/anchor_height", a3, a1);
            var acx = g.Op("Add", $"{S}/anchor_cx", a0, g.Op("Mul", $"{S}/anchor_half_width", aw, half));
            var acy = g.Op("Add", $"{S}/anchor_cy", a1, g.Op("Mul", $"{S}/anchor_half_height", ah, half));
            var clamp = g.FloatScalar((float)BoxCoder.DefaultScaleClamp);
            var dw = g.Op("Min", $"{S}/dw_clamped", D(2), clamp);
            var dh = g.Op("Min", $"{S}/dh_clamped", D(3), clamp);
            var cx = g.Op("Add", $"{S}/cx", g.Op("Mul", $"{S}/dx_scaled", D(0), aw), acx);
            var cy = g.Op("Add", $"{S}/cy", g.Op("Mul", $"{S}/dy_scaled", D(1), ah), acy);
            var halfW = g.Op("Mul", $"{S}/half_width", g.Op("Mul", $"{S}/width", g.Op("Exp", $"{S}/exp_dw", dw), aw), half);
            var halfH = g.Op("Mul", $"{S}/half_height", g.Op("Mul", $"{S}/height", g.Op("Exp", $"{S}/exp_dh", dh), ah), half);
            string Col(string name, string v) => g.Unsqueeze($"{S}/{name}_column", v, 1);
            return g.Op("Concat", $"{S}/boxes", [Col("x1", g.Op("Sub", $"{S}/x1", cx, halfW)), Col("y1", g.Op("Sub", $"{S}/y1", cy, halfH)),
                Col("x2", g.Op("Add", $"{S}/x2", cx, halfW)), Col("y2", g.Op("Add", $"{S}/y2", cy, halfH))], Int("axis", 1));
        }

        /// <summary>BoxOps.ClipToImage to the resized (unpadded) image: x in [0, width], y in [0, height].</summary>
        private string Clip(string boxes)
        {
            const string S = "postprocess/clip";
            string limits = _dynamic
                ? g.Cast($"{S}/limits", g.Op("Concat", $"{S}/limits_i64", [_resW, _resH, _resW, _resH], Int("axis", 0)), DataType.Float)
                : g.Floats("postprocess.clip_limits", [_fixedResized.W, _fixedResized.H, _fixedResized.W, _fixedResized.H], 4);
            return g.Op("Min", $"{S}/max", g.Op("Max", $"{S}/min", boxes, g.FloatScalar(0)), limits);
        }

        /// <summary>DetectionTransform.ScaleBoxes from the resized frame to the input image: float32 ratios input / resized per axis.</summary>
        private string ToInputPixels(string boxes)
        {
            const string S = "postprocess/to_input_pixels";
            string ratio;
            if (_dynamic)
            {
                string F(string name, string v) => g.Cast($"{S}/{name}", v, DataType.Float);
                var rh = g.Op("Div", $"{S}/ratio_height", F("input_height", _inH), F("resized_height", _resH));
                var rw = g.Op("Div", $"{S}/ratio_width", F("input_width", _inW), F("resized_width", _resW));
                ratio = g.Op("Concat", $"{S}/ratio", [rw, rh, rw, rh], Int("axis", 0));
            }
            else
            {
                float rh = (float)_fixedInput.H / (float)_fixedResized.H, rw = (float)_fixedInput.W / (float)_fixedResized.W;
                ratio = g.Floats("postprocess.input_ratio", [rw, rh, rw, rh], 4);
            }
            return g.Op("Mul", $"{S}/scale", boxes, ratio);
        }
    }
}
