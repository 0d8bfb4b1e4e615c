// Reference: torchvision 0.14 RetinaNet state_dict (keys, shapes) as PyTorch .pth files, read by IO.TorchSaveReader and
// written through TorchSharp.PyBridge; our own format stores the RetinaNetOptions JSON and the TorchSharp-serialised
// weights in one file.
using System.Text;
using RetinaSharp.IO;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace RetinaSharp.Modeling;

/// <summary>
/// Saving and loading RetinaNet weights: our format (options + weights in one file, written atomically) and
/// torchvision-compatible <c>.pth</c> state dicts (for example torchvision's <c>retinanet_resnet50_fpn_coco</c> checkpoint).
/// </summary>
public static class RetinaNetCheckpoint
{
    private static readonly byte[] Magic = "RETINASHARP-CKPT"u8.ToArray();
    private const int FormatVersion = 1;
    // The magic of Training.TrainingCheckpoint's checkpoint.rstrain, recognised to point the user at model.rsnet.
    private static readonly byte[] TrainingMagic = "RSTRAIN\n"u8.ToArray();

    /// <summary>
    /// Writes <paramref name="model"/> to <paramref name="path"/> in our format: the 16-byte magic "RETINASHARP-CKPT",
    /// int32 version, int32 byte length + UTF-8 options JSON, then the weights in TorchSharp's <c>Module.save</c> format.
    /// The file is replaced atomically.
    /// </summary>
    /// <exception cref="IOException">The destination cannot be written.</exception>
    public static void Save(RetinaNet model, string path) => Save(model, path, null);

    /// <summary>
    /// As <see cref="Save(RetinaNet, string)"/>, and stores the names of the model's classes (label i is
    /// <c>categories[i]</c>) in the options JSON under <c>"Categories"</c>, as torchvision keeps <c>categories</c> in
    /// its weights' meta data; <see cref="ReadCategories"/> reads them back. Older readers ignore the extra field.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="path">Destination file.</param>
    /// <param name="categories">One category (dataset id and name) per class in label order, or null to store none.</param>
    /// <exception cref="ArgumentException"><paramref name="categories"/> has another count than the model's classes.</exception>
    /// <exception cref="IOException">The destination cannot be written.</exception>
    public static void Save(RetinaNet model, string path, IReadOnlyList<Data.CocoCategory>? categories)
    {
        ArgumentNullException.ThrowIfNull(model);
        string text = model.Options.ToJson();
        if (categories != null)
        {
            if (categories.Count != model.Options.NumClasses)
                throw new ArgumentException($"{categories.Count} categories for a model of {model.Options.NumClasses} classes", nameof(categories));
            var node = System.Text.Json.Nodes.JsonNode.Parse(text)!.AsObject();
            var list = new System.Text.Json.Nodes.JsonArray();
            foreach (var c in categories) list.Add(new System.Text.Json.Nodes.JsonObject { ["Id"] = c.Id, ["Name"] = c.Name });
            node[CategoriesField] = list;
            text = node.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
        }
        var json = Encoding.UTF8.GetBytes(text);
        AtomicFile.Write(path, s =>
        {
            using var w = new BinaryWriter(s, Encoding.UTF8, leaveOpen: true);
            w.Write(Magic);
            w.Write(FormatVersion);
            w.Write(json.Length);
            w.Write(json);
            model.save(w);
            w.Flush();
        });
    }

    /// <summary>Writes the state_dict as a PyTorch <c>.pth</c> zip that torchvision's <c>RetinaNet.load_state_dict(torch.load(path))</c> accepts. Atomic.</summary>
    /// <exception cref="IOException">The destination cannot be written.</exception>
    public static void SaveTorchvisionPth(RetinaNet model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        AtomicFile.Write(path, s => model.save_py(s, leaveOpen: true));
    }

    /// <summary>
    /// Loads a model saved by <see cref="Save(RetinaNet, string)"/> (options from the file) or a torchvision <c>.pth</c> state dict
    /// (options inferred from the weights: backbone depth, number of classes, GroupNorm head, P6 source; other
    /// settings from <paramref name="options"/> when given, else defaults).
    /// </summary>
    /// <param name="path">The checkpoint file.</param>
    /// <param name="options">For a .pth: the configuration to build; its NumClasses, Backbone, HeadGroupNorm and P6FromC5
    /// must equal what the weights hold (FpnChannels is taken from the weights). For our format: ignored except that a
    /// different NumClasses is an error.</param>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="DataFormatException"><paramref name="path"/> is a folder; neither format; a truncated or corrupt file;
    /// keys or shapes that do not fit (the first mismatches are listed with both shapes); a NumClasses (either format) or,
    /// for a .pth, a Backbone, HeadGroupNorm or P6FromC5 in <paramref name="options"/> that differs from the weights' (the
    /// message names each setting with both values).</exception>
    public static RetinaNet Load(string path, RetinaNetOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
            throw new DataFormatException(path, null, null, "is a folder, expected a checkpoint file (a RetinaSharp model.rsnet or a PyTorch .pth)" +
                (File.Exists(Path.Combine(path, "model.rsnet")) ? $"; did you mean {Path.Combine(Path.GetFullPath(path), "model.rsnet")}?" : ""));
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint '{path}' does not exist", path);
        using var fs = File.OpenRead(path);
        var head = new byte[Magic.Length];
        int read = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        fs.Seek(0, SeekOrigin.Begin);
        if (read == Magic.Length && head.AsSpan().SequenceEqual(Magic)) return LoadOurs(path, fs, options);
        // A zip: torch.save's format; 0x80 then a protocol number: torch.save's legacy format (TorchSaveReader names it).
        if ((read >= 4 && head[0] == 0x50 && head[1] == 0x4b && head[2] == 0x03 && head[3] == 0x04) || (read >= 2 && head[0] == 0x80 && head[1] <= 5))
        {
            fs.Dispose();
            return LoadPth(path, options);
        }
        if (read >= TrainingMagic.Length && head.AsSpan(0, TrainingMagic.Length).SequenceEqual(TrainingMagic))
            throw new DataFormatException(path, null, null,
                $"this is a training checkpoint (for retina train --resume); use the model file {Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "model.rsnet")} written in the same folder when the run finished");
        throw new DataFormatException(path, null, null, "not a RetinaSharp model file (model.rsnet, magic RETINASHARP-CKPT) nor a PyTorch .pth zip file");
    }

    private const string CategoriesField = "Categories";

    /// <summary>
    /// The class names stored by <see cref="Save(RetinaNet, string, IReadOnlyList{Data.CocoCategory})"/>: one category per
    /// label, in label order. Null for a torchvision <c>.pth</c>, for our files saved without names, or when the file is
    /// not readable (<see cref="Load"/> reports that).
    /// </summary>
    /// <param name="path">A checkpoint file.</param>
    public static IReadOnlyList<Data.CocoCategory>? ReadCategories(string path)
    {
        try
        {
            using var fs = File.OpenRead(path);
            using var r = new BinaryReader(fs, Encoding.UTF8, leaveOpen: true);
            if (!r.ReadBytes(Magic.Length).AsSpan().SequenceEqual(Magic) || r.ReadInt32() != FormatVersion) return null;
            int len = r.ReadInt32();
            if (len <= 0 || len > 1 << 20) return null;
            var node = System.Text.Json.Nodes.JsonNode.Parse(r.ReadBytes(len));
            if (node?[CategoriesField] is not System.Text.Json.Nodes.JsonArray list) return null;
            return list.Select(c => new Data.CocoCategory(c!["Id"]!.GetValue<long>(), c["Name"]!.GetValue<string>())).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException or InvalidOperationException or NullReferenceException or FormatException)
        {
            return null;
        }
    }

    private static DataFormatException Truncated(string path, Stream fs, string part, Exception? inner = null) =>
        new(path, null, part, $"truncated or corrupt checkpoint: the file has {fs.Length} bytes and ends inside its {part}", inner);

    private static RetinaNet LoadOurs(string path, Stream fs, RetinaNetOptions? requested)
    {
        using var r = new BinaryReader(fs, Encoding.UTF8, leaveOpen: true);
        r.ReadBytes(Magic.Length);
        int version, len;
        try { version = r.ReadInt32(); }
        catch (EndOfStreamException e) { throw Truncated(path, fs, "version", e); }
        if (version != FormatVersion) throw new DataFormatException(path, null, "version", $"format version {version} is not supported (expected {FormatVersion})");
        try { len = r.ReadInt32(); }
        catch (EndOfStreamException e) { throw Truncated(path, fs, "options", e); }
        if (len <= 0 || len > 1 << 20) throw new DataFormatException(path, null, "options", $"options length {len} is invalid");
        var json = r.ReadBytes(len);
        if (json.Length < len) throw Truncated(path, fs, "options");
        RetinaNetOptions options;
        try { options = RetinaNetOptions.FromJson(Encoding.UTF8.GetString(json)); }
        catch (Exception e) when (e is System.Text.Json.JsonException or ArgumentException or EndOfStreamException)
        { throw new DataFormatException(path, null, "options", e.Message, e); }
        if (requested is not null && requested.NumClasses != options.NumClasses)
            throw new DataFormatException(path, null, "NumClasses", $"the checkpoint was trained for {options.NumClasses} classes but {requested.NumClasses} were requested");
        var model = new RetinaNet(options);
        try { model.load(r, strict: true); }
        catch (EndOfStreamException e) { model.Dispose(); throw Truncated(path, fs, "weights", e); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException)
        { model.Dispose(); throw new DataFormatException(path, null, "weights", e.Message, e); }
        return model;
    }

    private static RetinaNet LoadPth(string path, RetinaNetOptions? requested)
    {
        var sd = TorchSaveReader.ReadStateDict(path).Tensors;
        try
        {
            var options = InferOptions(path, sd, requested);
            var model = new RetinaNet(options);
            try { CopyStateDict(path, model, sd); }
            catch { model.Dispose(); throw; }
            return model;
        }
        finally
        {
            foreach (var t in sd.Values) t.Dispose();
        }
    }

    /// <summary>Reads the architecture from torchvision state_dict keys and shapes.</summary>
    private static RetinaNetOptions InferOptions(string path, IReadOnlyDictionary<string, Tensor> sd, RetinaNetOptions? requested)
    {
        const string clsKey = "head.classification_head.cls_logits.weight";
        if (!sd.TryGetValue(clsKey, out var cls))
            throw new DataFormatException(path, null, clsKey, $"missing: not a torchvision RetinaNet state dict (first keys: {string.Join(", ", sd.Keys.Take(5))})");
        var depth = ResNetDepthFromKeys(sd.Keys, "backbone.body.", out string layout)
            ?? throw new DataFormatException(path, null, "backbone.body", $"unrecognised ResNet ({layout})");
        var baseOptions = requested ?? new RetinaNetOptions(1);
        long fpn = sd.TryGetValue("backbone.fpn.layer_blocks.0.0.weight", out var lb) ? lb.shape[0] : baseOptions.FpnChannels;
        long a = baseOptions.AnchorsPerLocation;
        long k = cls.shape[0] / a;
        if (cls.shape[0] % a != 0)
            throw new DataFormatException(path, null, clsKey, $"shape [{string.Join(", ", cls.shape)}] is not a multiple of {a} anchors per location");
        if (requested is not null && requested.NumClasses != k)
            throw new DataFormatException(path, null, "num_classes", $"the weights have {k} classes ({clsKey} has {cls.shape[0]} = {a} anchors × {k}) but the options ask for {requested.NumClasses}");
        bool gn = sd.ContainsKey("head.classification_head.conv.0.1.weight");
        bool fromC5 = sd.TryGetValue("backbone.fpn.extra_blocks.p6.weight", out var p6) && p6.shape[1] != fpn;
        if (requested is not null)
        {
            var clash = new List<(string Field, string Text)>();
            if (requested.Backbone != depth)
                clash.Add((nameof(RetinaNetOptions.Backbone), $"Backbone: the weights are a {depth} but the options ask for {requested.Backbone}"));
            if (requested.HeadGroupNorm != gn)
                clash.Add((nameof(RetinaNetOptions.HeadGroupNorm), $"HeadGroupNorm: the weights' head {(gn ? "has" : "has no")} GroupNorm (HeadGroupNorm = {gn}) but the options ask for HeadGroupNorm = {requested.HeadGroupNorm}"));
            if (requested.P6FromC5 != fromC5)
                clash.Add((nameof(RetinaNetOptions.P6FromC5), $"P6FromC5: the weights compute P6 from {(fromC5 ? "C5" : "P5")} (P6FromC5 = {fromC5}) but the options ask for P6FromC5 = {requested.P6FromC5}"));
            if (clash.Count > 0)
                throw new DataFormatException(path, null, clash.Count == 1 ? clash[0].Field : null,
                    "the options do not fit the weights: " + string.Join("; ", clash.Select(c => c.Text)));
        }
        return baseOptions with { NumClasses = (int)k, Backbone = depth, FpnChannels = (int)fpn, HeadGroupNorm = gn, P6FromC5 = fromC5 };
    }

    /// <summary>
    /// The ResNet whose state_dict keys (after <paramref name="prefix"/>) are <paramref name="keys"/>: bottleneck blocks
    /// (<c>layer1.0.conv3</c>) and the block counts of layer1, layer3 and layer4 tell the depths apart. Null when none fits;
    /// <paramref name="layout"/> then describes what was found.
    /// </summary>
    internal static ResNetDepth? ResNetDepthFromKeys(IEnumerable<string> keys, string prefix, out string layout)
    {
        var list = keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).Select(k => k[prefix.Length..]).ToList();
        bool bottleneck = list.Contains("layer1.0.conv3.weight");
        int Blocks(int layer) => list.Where(k => k.StartsWith($"layer{layer}.", StringComparison.Ordinal))
            .Select(k => int.TryParse(k.Split('.')[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int b) ? b : -1)
            .DefaultIfEmpty(-1).Max() + 1;
        int l1 = Blocks(1), l3 = Blocks(3), l4 = Blocks(4);
        layout = $"{(bottleneck ? "bottleneck" : "basic")} blocks, layer1 {l1}, layer3 {l3}, layer4 {l4} blocks";
        return (bottleneck, l1, l3, l4) switch
        {
            (false, 2, 2, 3) => ResNetDepth.ResNet18Cntk,
            (false, 2, 2, 2) => ResNetDepth.ResNet18,
            (false, 3, 6, 3) => ResNetDepth.ResNet34,
            (true, 3, 6, 3) => ResNetDepth.ResNet50,
            (true, 3, 23, 3) => ResNetDepth.ResNet101,
            _ => null,
        };
    }

    /// <summary>Copies a state dict into <paramref name="model"/> after checking every key and shape (num_batches_tracked entries are ignored).</summary>
    /// <exception cref="DataFormatException">Missing, unexpected or mis-shaped entries; the first 10 are listed.</exception>
    internal static void CopyStateDict(string source, RetinaNet model, IReadOnlyDictionary<string, Tensor> sd)
    {
        var own = model.state_dict();
        var problems = new List<string>();
        foreach (var (key, t) in own)
        {
            if (!sd.TryGetValue(key, out var src)) problems.Add($"missing {key} (model [{string.Join(", ", t.shape)}])");
            else if (!src.shape.SequenceEqual(t.shape)) problems.Add($"{key}: file [{string.Join(", ", src.shape)}] vs model [{string.Join(", ", t.shape)}]");
        }
        foreach (var key in sd.Keys)
            if (!own.ContainsKey(key) && !key.EndsWith(".num_batches_tracked", StringComparison.Ordinal))
                problems.Add($"unexpected {key} [{string.Join(", ", sd[key].shape)}]");
        if (problems.Count > 0)
            throw new DataFormatException(source, null, "state_dict",
                $"{problems.Count} key/shape mismatch(es) with a {model.Options.Backbone} RetinaNet of {model.Options.NumClasses} classes; first: " + string.Join("; ", problems.Take(10)));
        using (no_grad())
            foreach (var (key, t) in own)
                t.copy_(sd[key]);
    }
}
