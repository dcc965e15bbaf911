"""A torchvision model with seeded random weights, BN statistics and affine parameters
randomised too (so eval mode is meaningful): the starting point of the model references."""
import torch
import torchvision


def seeded_model(name, num_classes, seed=0):
    torch.manual_seed(seed)
    model = getattr(torchvision.models, name)(num_classes=num_classes)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return model
