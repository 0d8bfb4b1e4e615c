// Reference: torchvision 0.14 classification checkpoints (resnet18-f37072fd.pth, resnet50-0676ba61.pth, ... as
// torch.hub caches them): a state_dict of torchvision.models.resnetXX with keys conv1, bn1, layer1..layer4, fc.
// Loaded into our ResNetBody (same key names) as torchvision's detection models load weights_backbone; fc.* is dropped.
using RetinaSharp.IO;
using RetinaSharp.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Pretrained;

/// <summary>Reads a torchvision ResNet classification checkpoint (.pth) into a <see cref="ResNetBody"/>.</summary>
public static class TorchvisionResNetCheckpoint
{
    /// <summary>Reads the state dict of <paramref name="path"/>: key to tensor (caller disposes the tensors).</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="DataFormatException">A folder, or not a torch.save state dict (see <see cref="TorchSaveReader.ReadStateDict"/>).</exception>
    public static Dictionary<string, Tensor> ReadStateDict(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path)) throw new DataFormatException(path, null, null, "is a folder, expected a torchvision ResNet checkpoint (.pth)");
        if (!File.Exists(path)) throw new FileNotFoundException($"backbone weights '{path}' do not exist", path);
        return TorchSaveReader.ReadStateDict(path).Tensors;
    }

    /// <summary>The ResNet depth of a torchvision classification state dict (from its keys).</summary>
    /// <exception cref="DataFormatException">The keys are not a torchvision ResNet's (a detector checkpoint is named as such).</exception>
    public static ResNetDepth Depth(string path, IReadOnlyDictionary<string, Tensor> sd)
    {
        if (sd.ContainsKey("backbone.body.conv1.weight"))
            throw new DataFormatException(path, null, "backbone.body.conv1.weight",
                "this is a whole detector checkpoint (keys backbone.body.*, head.*), not a classification backbone: start from it with --init instead");
        if (!sd.ContainsKey("conv1.weight"))
            throw new DataFormatException(path, null, "conv1.weight", $"missing: not a torchvision ResNet state dict (first keys: {string.Join(", ", sd.Keys.Take(5))})");
        return RetinaNetCheckpoint.ResNetDepthFromKeys(sd.Keys, "", out string layout)
            ?? throw new DataFormatException(path, null, "layer1", $"unrecognised ResNet ({layout}); expected resnet18, resnet34, resnet50 or resnet101");
    }

    /// <summary>
    /// Copies every tensor of <paramref name="body"/> from the checkpoint: convolutions, and for frozen or trainable batch
    /// norm weight, bias, running_mean and running_var (<c>num_batches_tracked</c> when present). <c>fc.*</c> (the
    /// 1000-class classifier) is ignored. Returns the number of tensors copied.
    /// </summary>
    /// <exception cref="DataFormatException">A tensor of the body is missing or has another shape, or the file holds keys that are
    /// neither the body's nor fc.* (the first 10 problems are listed).</exception>
    public static int CopyInto(string path, ResNetBody body, IReadOnlyDictionary<string, Tensor> sd)
    {
        ArgumentNullException.ThrowIfNull(body);
        var own = body.state_dict();
        var problems = new List<string>();
        foreach (var (key, t) in own)
        {
            if (key.EndsWith(".num_batches_tracked", StringComparison.Ordinal)) continue;
            if (!sd.TryGetValue(key, out var src)) problems.Add($"missing {key} (model [{string.Join(", ", t.shape)}])");
            else if (!src.shape.SequenceEqual(t.shape)) problems.Add($"{key}: file [{string.Join(", ", src.shape)}] vs model [{string.Join(", ", t.shape)}]");
        }
        foreach (var key in sd.Keys)
            if (!own.ContainsKey(key) && !key.StartsWith("fc.", StringComparison.Ordinal) && !key.EndsWith(".num_batches_tracked", StringComparison.Ordinal))
                problems.Add($"unexpected {key} [{string.Join(", ", sd[key].shape)}]");
        if (problems.Count > 0)
            throw new DataFormatException(path, null, "state_dict",
                $"{problems.Count} key/shape mismatch(es) with a {body.Depth} backbone; first: " + string.Join("; ", problems.Take(10)));
        int copied = 0;
        using (no_grad())
            foreach (var (key, t) in own)
                if (sd.TryGetValue(key, out var src))
                {
                    t.copy_(src);
                    copied++;
                }
        return copied;
    }
}
